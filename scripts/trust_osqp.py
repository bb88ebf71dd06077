#!/usr/bin/env python3
"""OSQP and Clarabel (from PyPI) on the problems of `altdiff trust --export DIR`, judged by
the same rule as `altdiff trust`: right when the objective is within 1e-5 max(1, |f*|) and x
within 1e-3 max(1, |x*|_inf) (x only where the solution is unique); wrong when reported
solved otherwise; unsolved when not reported solved.

    pip install osqp==1.1.* clarabel numpy scipy
    altdiff trust --export /tmp/trust
    python3 scripts/trust_osqp.py /tmp/trust [--eps 1e-6] [--max-iter 10000]

OSQP runs with its defaults except eps_abs = eps_rel = --eps (altdiff's default tolerance)
and max_iter (altdiff's default iteration bound); polishing as OSQP's default (off) and on.
Clarabel runs with its defaults.
"""
import argparse
import glob
import json
import math
import os
import time

import clarabel
import numpy as np
import osqp
import scipy.sparse as sp


def load(path):
    d = json.load(open(path))
    q = np.array(d["q"], float)
    n = len(q)
    P = np.array(d["P"], float).reshape(n, n)
    A = np.array(d.get("A") or np.zeros((0, n)), float).reshape(-1, n)
    G = np.array(d.get("G") or np.zeros((0, n)), float).reshape(-1, n)
    b = np.array(d.get("b", []), float)
    h = np.array(d.get("h", []), float)
    return P, q, A, b, G, h


def objective(P, q, x):
    return 0.5 * x @ P @ x + q @ x


def judge(solved, x, P, q, ref):
    if not solved or x is None or not np.all(np.isfinite(x)):
        return "unsolved"
    f, fs = objective(P, q, x), ref["objective"]
    ok = abs(f - fs) <= 1e-5 * max(1.0, abs(fs))
    if ref["unique"]:
        xs = np.array(ref["x"])
        ok = ok and np.max(np.abs(x - xs), initial=0.0) <= 1e-3 * max(1.0, np.max(np.abs(xs), initial=0.0))
    return "right" if ok else "wrong-solved"


def run_osqp(P, q, A, b, G, h, eps, max_iter, polish):
    C = sp.csc_matrix(np.vstack([A, G]))
    lo = np.concatenate([b, -np.inf * np.ones(len(h))])
    hi = np.concatenate([b, h])
    m = osqp.OSQP()
    m.setup(sp.csc_matrix(P), q, C, lo, hi, eps_abs=eps, eps_rel=eps, max_iter=max_iter,
            polishing=polish, verbose=False)
    r = m.solve()
    return r.info.status == "solved", r.x, r.info.iter


def run_clarabel(P, q, A, b, G, h):
    s = clarabel.DefaultSettings()
    s.verbose = False
    C = sp.csc_matrix(np.vstack([A, G]))
    solver = clarabel.DefaultSolver(sp.triu(sp.csc_matrix(P)).tocsc(), q, C, np.concatenate([b, h]),
                                    [clarabel.ZeroConeT(len(b)), clarabel.NonnegativeConeT(len(h))], s)
    r = solver.solve()
    return str(r.status) == "Solved", np.array(r.x), r.iterations


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=10000)
    args = ap.parse_args()
    files = sorted(f for f in glob.glob(os.path.join(args.dir, "*.json")) if not f.endswith(".ref.json"))
    solvers = {
        "osqp": lambda *d: run_osqp(*d, args.eps, args.max_iter, False),
        "osqp-polish": lambda *d: run_osqp(*d, args.eps, args.max_iter, True),
        "clarabel": run_clarabel,
    }
    counts = {name: {} for name in solvers}
    times = {name: [] for name in solvers}
    wrong = {name: [] for name in solvers}
    for f in files:
        name = os.path.basename(f)[:-5]
        kind = name.rsplit("-", 1)[0]
        ref = json.load(open(f[:-5] + ".ref.json"))
        data = load(f)
        for solver, run in solvers.items():
            t = time.perf_counter()
            solved, x, _ = run(*data)
            times[solver].append(time.perf_counter() - t)
            j = judge(solved, x, data[0], data[1], ref)
            c = counts[solver].setdefault(kind, {"right": 0, "wrong-solved": 0, "unsolved": 0})
            c[j] += 1
            if j != "right":
                wrong[solver].append((name, j))
    for solver in solvers:
        total = {"right": 0, "wrong-solved": 0, "unsolved": 0}
        print(f"{solver}: eps {args.eps}, max_iter {args.max_iter}")
        print(f"  {'kind':<16} {'problems':>8} {'right':>8} {'wrong-solved':>13} {'unsolved':>9}")
        for kind in sorted(counts[solver]):
            c = counts[solver][kind]
            for k in total:
                total[k] += c[k]
            print(f"  {kind:<16} {sum(c.values()):>8} {c['right']:>8} {c['wrong-solved']:>13} {c['unsolved']:>9}")
        print(f"  {'all':<16} {sum(total.values()):>8} {total['right']:>8} {total['wrong-solved']:>13} {total['unsolved']:>9}")
        sgm = math.exp(sum(math.log(t + 1e-3) for t in times[solver]) / len(times[solver])) - 1e-3
        print(f"  shifted geometric mean of the solve times (shift 1 ms): {1e3 * sgm:.3f} ms")
        for name, j in wrong[solver]:
            print(f"    {name} {j}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""altdiff against OSQP on the Maros-Meszaros test set, judged against Clarabel.

    pip install osqp==1.1.* clarabel numpy scipy
    altdiff suite --dir DIR --eps 1e-6 --time-limit 10 --json altdiff.json
    python3 scripts/maros_compare.py --dir DIR --altdiff altdiff.json [--eps 1e-6]
        [--time-limit 10] [--references refs.json] [--osqp osqp.json]

For every MAT-file of DIR: Clarabel (its defaults, 60 s) gives the reference objective
(cached in --references when given); OSQP runs with eps_abs = eps_rel = --eps, the same
time limit and an iteration bound of 1e6, with its default (no polishing) and with
polishing (cached in --osqp). A solver's answer is right when it reports solved and its
objective is within 1e-3 max(1, |f*|) of Clarabel's, wrong when it reports solved
otherwise. Counted over the problems Clarabel solves; the shifted geometric mean of the
solve times (shift 1 s, setup included) is over the problems both altdiff and OSQP solve
right.
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
import scipy.io
import scipy.sparse as sp

INFINITE = 1e19


def load(path):
    m = scipy.io.loadmat(path)
    P = sp.csc_matrix(m["P"], dtype=float)
    q = np.asarray(m["q"], dtype=float).ravel()
    r = float(np.asarray(m["r"], dtype=float).ravel()[0]) if "r" in m else 0.0
    A = sp.csc_matrix(m["A"], dtype=float)
    l = np.asarray(m["l"], dtype=float).ravel()
    u = np.asarray(m["u"], dtype=float).ravel()
    l[l <= -INFINITE] = -np.inf
    u[u >= INFINITE] = np.inf
    return P, q, r, A, l, u


def run_clarabel(P, q, r, A, l, u, time_limit):
    eq = np.isfinite(l) & np.isfinite(u) & (l == u)
    up = np.isfinite(u) & ~eq
    lo = np.isfinite(l) & ~eq
    A = sp.csr_matrix(A)
    blocks = [A[eq], A[up], -A[lo]]
    rhs = np.concatenate([u[eq], u[up], -l[lo]])
    C = sp.vstack(blocks).tocsc()
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.time_limit = time_limit
    solver = clarabel.DefaultSolver(sp.triu(P).tocsc(), q, C, rhs,
                                    [clarabel.ZeroConeT(int(eq.sum())), clarabel.NonnegativeConeT(int(up.sum() + lo.sum()))], s)
    t = time.perf_counter()
    res = solver.solve()
    return str(res.status), res.obj_val + r, time.perf_counter() - t


def run_osqp(P, q, r, A, l, u, eps, time_limit, polish):
    m = osqp.OSQP()
    t = time.perf_counter()
    m.setup(sp.triu(P).tocsc(), q, A, l, u, eps_abs=eps, eps_rel=eps, max_iter=1_000_000,
            time_limit=time_limit, polishing=polish, verbose=False)
    res = m.solve()
    elapsed = time.perf_counter() - t
    x = res.x
    f = 0.5 * x @ (P @ x) + q @ x + r if x is not None and np.all(np.isfinite(x)) else float("nan")
    return res.info.status, f, elapsed


def cached(path, compute):
    data = {}
    if path and os.path.exists(path):
        data = json.load(open(path))
    out = compute(data)
    if path:
        json.dump(out, open(path, "w"), indent=1)
    return out


def right(status_ok, f, ref):
    return status_ok and math.isfinite(f) and abs(f - ref) <= 1e-3 * max(1.0, abs(ref))


def sgm(times, shift=1.0):
    if not times:
        return float("nan")
    return math.exp(sum(math.log(t + shift) for t in times) / len(times)) - shift


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--altdiff", required=True, help="the JSON of altdiff suite --json")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--references")
    ap.add_argument("--osqp")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.dir, "*.mat")))
    names = [os.path.basename(f)[:-4] for f in files]

    def references(data):
        for name, f in zip(names, files):
            if name not in data:
                try:
                    status, obj, t = run_clarabel(*load(f), 60.0)
                except Exception as e:  # noqa: BLE001
                    status, obj, t = f"error: {e}", float("nan"), 0.0
                data[name] = {"status": status, "objective": obj, "time_s": t}
        return data

    def osqp_runs(data):
        for name, f in zip(names, files):
            key = f"{name}@{args.eps}@{args.time_limit}"
            if key not in data:
                data[key] = {}
                for polish in (False, True):
                    try:
                        status, obj, t = run_osqp(*load(f), args.eps, args.time_limit, polish)
                    except Exception as e:  # noqa: BLE001
                        status, obj, t = f"error: {e}", float("nan"), 0.0
                    data[key]["polish" if polish else "plain"] = {"status": status, "objective": obj, "time_s": t}
        return data

    refs = cached(args.references, references)
    osqp_data = cached(args.osqp, osqp_runs)
    text = open(args.altdiff).read().strip()
    records = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    altdiff = {rec["name"]: rec for rec in records}

    solvable = [n for n in names if refs[n]["status"] == "Solved"]
    rows = {"altdiff": [0, 0, {}], "osqp": [0, 0, {}], "osqp-polish": [0, 0, {}]}
    for name in solvable:
        ref = refs[name]["objective"]
        a = altdiff.get(name)
        if a is not None:
            ok = a["status"] == "solved"
            f = a.get("objective")
            f = float("nan") if f is None else f
            if right(ok, f, ref):
                rows["altdiff"][0] += 1
                rows["altdiff"][2][name] = a["time_s"]
            elif ok:
                rows["altdiff"][1] += 1
                print(f"  altdiff wrong: {name} f {f:.9g} f* {ref:.9g}")
        o = osqp_data[f"{name}@{args.eps}@{args.time_limit}"]
        for label, run in (("osqp", o["plain"]), ("osqp-polish", o["polish"])):
            ok = run["status"] == "solved"
            if right(ok, run["objective"], ref):
                rows[label][0] += 1
                rows[label][2][name] = run["time_s"]
            elif ok:
                rows[label][1] += 1
                print(f"  {label} wrong: {name} f {run['objective']:.9g} f* {ref:.9g}")
    print(f"Maros-Meszaros: {len(names)} problems, {len(solvable)} solved by Clarabel; eps {args.eps}, "
          f"time limit {args.time_limit} s")
    print(f"{'solver':<12} {'right':>6} {'wrong':>6} {'sgm time s (both right)':>26}")
    common = [n for n in rows["altdiff"][2] if n in rows["osqp"][2]]
    for label in rows:
        times = [rows[label][2][n] for n in common if n in rows[label][2]]
        print(f"{label:<12} {rows[label][0]:>6} {rows[label][1]:>6} {sgm(times):>26.4f}")
    print(f"shifted geometric means over the {len(common)} problems altdiff and OSQP (plain) both solve right")


if __name__ == "__main__":
    main()

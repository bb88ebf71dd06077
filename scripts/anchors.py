#!/usr/bin/env python3
"""Side-by-side anchors for issue 4's goals: the same problem through ProxSuite's QPLayer
core and an exact KKT differentiation in numpy/scipy, then through `altdiff bench`, in one
run on one machine, single-threaded.

    python3 -m pip install numpy scipy proxsuite     # once (CPython 3.11 wheels exist)
    cargo build --release -p altdiff-examples
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 scripts/anchors.py [--n 1000 --n-eq 500 --n-ineq 200]

What is timed (median over --repeats):
* QPLayer: what `proxsuite.torch.qplayer.QPFunction` runs per problem, without torch:
  `proxqp.dense.QP` with QPLayer's settings (eps 1e-6 here, default_rho 5e-5, no
  refactorization), `init` + `solve` (forward), then `compute_backward` with dL/dx = 1
  (forward + VJP; eps_backward 1e-4, QPLayer's default, and rho_backward = mu_backward =
  1e-8: with the default 1e-6, QPLayer's dL/db is 1.8e-6 off the exact one, above the
  goal's 1e-6).
* KKT (numpy/scipy): the full Jacobian of x wrt (q, b, h) from an LU factorization of the
  KKT matrix on the active set at proxqp's solution (forward not included).
* QPFunction (when torch is installed): the real `proxsuite.torch.qplayer.QPFunction`
  (eps 1e-6, the same backward regularization), forward and `x.sum().backward()`, one
  thread.
* altdiff, per backend of --backends (faer, faer-f32): `altdiff bench --problem FILE
  --backend B --stop residual:1e-6`, row
  `altdiff-vjp-limit` (forward + VJP of d(sum x)/db), and `altdiff derivatives --problem FILE
  --stop residual:1e-6`, row `Jacobian q,b,h: Alt-Diff limit` (setup + forward + the full
  Jacobian of x wrt q, b, h in one solve).

With --rounds R the forward + VJP comparison runs R times, QPLayer and altdiff back to
back in each round, and the ratio is the median of the rounds' ratios (this machine's
speed drifts by tens of percent over minutes).

The problem is the seed's generator: P = W'W with W ~ N(0, 1) (n x n); q, A, b, G, h ~ N(0, 1).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import proxsuite
import scipy.linalg


def seed_problem(n, n_eq, n_ineq, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, n))
    return dict(
        P=w.T @ w,
        q=rng.standard_normal(n),
        A=rng.standard_normal((n_eq, n)),
        b=rng.standard_normal(n_eq),
        G=rng.standard_normal((n_ineq, n)),
        h=rng.standard_normal(n_ineq),
    )


# QPLayer's backward regularization: its default 1e-6 leaves dL/db about 1.8e-6 (relative) off
# the exact one on this problem, above the goal's 1e-6; 1e-8 brings it to about 3e-8 at the
# same cost
BACKWARD_REG = 1e-8


def qplayer(qp_data):
    """(forward s, forward + VJP s, x, dL/db) of one QPLayer-style solve."""
    P, q, A, b, G, h = (qp_data[k] for k in "P q A b G h".split())
    n, n_eq, n_ineq = P.shape[0], A.shape[0], G.shape[0]
    t0 = time.perf_counter()
    qp = proxsuite.proxqp.dense.QP(n, n_eq, n_ineq)
    qp.settings.primal_infeasibility_solving = False
    qp.settings.max_iter = 1000
    qp.settings.max_iter_in = 100
    qp.settings.default_rho = 5e-5
    qp.settings.refactor_rho_threshold = 5e-5
    qp.settings.eps_abs = 1e-6
    qp.init(H=P, g=q, A=A, b=b, C=G, l=np.full(n_ineq, -1e20), u=h, rho=5e-5)
    qp.solve()
    t1 = time.perf_counter()
    rhs = np.zeros(n + n_eq + n_ineq)
    rhs[:n] = 1.0
    proxsuite.proxqp.dense.compute_backward(
        qp=qp, loss_derivative=rhs, eps=1e-4, rho_backward=BACKWARD_REG, mu_backward=BACKWARD_REG
    )
    t2 = time.perf_counter()
    return (
        t1 - t0,
        t2 - t0,
        np.array(qp.results.x),
        np.array(qp.results.z),
        np.array(qp.model.backward_data.dL_db),
    )


def kkt_jacobian(qp_data, x, z):
    """The exact Jacobian of x wrt (q, b, h) on the active set {z > 0} by one LU."""
    P, A, G, h = qp_data["P"], qp_data["A"], qp_data["G"], qp_data["h"]
    n, n_eq = P.shape[0], A.shape[0]
    active = np.flatnonzero(z > 1e-9 * max(1.0, np.abs(z).max()))
    C = np.vstack([A, G[active]])
    k = C.shape[0]
    kkt = np.block([[P, C.T], [C, np.zeros((k, k))]])
    lu = scipy.linalg.lu_factor(kkt)
    rhs = np.zeros((n + k, n + n_eq + G.shape[0]))
    rhs[:n, :n] = -np.eye(n)
    rhs[n : n + n_eq, n : n + n_eq] = np.eye(n_eq)
    rhs[n + n_eq + np.arange(len(active)), n + n_eq + active] = 1.0
    return scipy.linalg.lu_solve(lu, rhs)[:n]


def median_time(f, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def altdiff_rows(binary, path, args, wrt, method, backend):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        json_path = out.name
    cmd = [
        binary, "bench", "--problem", path, "--backend", backend, "--stop", "residual:1e-6",
        "--repeats", str(args.repeats), "--methods", method, "--wrt", wrt, "--json", json_path,
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(json_path) as f:
        rows = json.load(f)
    os.unlink(json_path)
    return rows[0]


def altdiff_derivatives_total(args, path, row, backend):
    """The median total seconds of one row of `altdiff derivatives --problem FILE`."""
    out = subprocess.run(
        [args.altdiff, "derivatives", "--problem", path, "--backend", backend,
         "--repeats", str(args.repeats), "--stop", "residual:1e-6"],
        check=True, capture_output=True, text=True,
    ).stdout
    line = next(l for l in out.splitlines() if row in l and l.split()[0] == backend)
    return float(line[line.index(row) + len(row):].split()[4])


def qpfunction(qp_data):
    """(forward s, forward + backward s) of one call of the real `QPFunction` (torch), or
    None when torch is not installed."""
    try:
        import torch
        from proxsuite.torch.qplayer import QPFunction
    except ImportError:
        return None
    torch.set_num_threads(1)
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in qp_data.items()}
    lower = torch.full((qp_data["G"].shape[0],), -1e20, dtype=torch.float64)
    t0 = time.perf_counter()
    layer = QPFunction(eps=1e-6, rho_backward=BACKWARD_REG, mu_backward=BACKWARD_REG)
    x, _, _ = layer(t["P"], t["q"], t["A"], t["b"], t["G"], lower, t["h"])
    t1 = time.perf_counter()
    x.sum().backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n-eq", type=int, default=500)
    parser.add_argument("--n-ineq", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of the forward + VJP comparison, each QPLayer then "
                             "altdiff back to back (the ratio is the median of the rounds')")
    parser.add_argument("--altdiff", default="target/release/altdiff")
    parser.add_argument("--backends", default="faer,faer-f32",
                        help="altdiff backends, comma-separated (faer-f32: H in single "
                             "precision, the polish and the VJP refined to f64)")
    parser.add_argument("--no-jacobian", action="store_true",
                        help="skip the full-Jacobian comparison (goal 3)")
    args = parser.parse_args()

    data = seed_problem(args.n, args.n_eq, args.n_ineq, args.seed)
    path = os.path.join(tempfile.mkdtemp(), "anchor.npz")
    np.savez(path, **data)
    n, n_eq = args.n, args.n_eq
    backends = args.backends.split(",")
    print(f"problem: seed generator, (n, n_eq, n_ineq) = ({n}, {n_eq}, {args.n_ineq}), "
          f"{args.repeats} repeats, medians, threads: OMP={os.environ.get('OMP_NUM_THREADS')}")

    # forward + VJP, round by round: QPLayer, then each backend, back to back
    ratios = {b: [] for b in backends}
    for r in range(args.rounds):
        runs = [qplayer(data) for _ in range(args.repeats)]
        fwd = float(np.median([run[0] for run in runs]))
        fwd_vjp = float(np.median([run[1] for run in runs]))
        line = f"round {r + 1}: QPLayer core forward {fwd:.3f} s, forward + VJP {fwd_vjp:.3f} s"
        torch_runs = [qpfunction(data) for _ in range(args.repeats)]
        if torch_runs[0] is not None:
            line += (f"; QPFunction (torch) forward + backward "
                     f"{float(np.median([t[1] for t in torch_runs])):.3f} s")
        print(line)
        for backend in backends:
            vjp = altdiff_rows(args.altdiff, path, args, "b", "altdiff-vjp-limit", backend)
            ratios[backend].append(fwd_vjp / vjp["time_median_s"])
            print(f"  altdiff {backend:<8} forward + VJP {vjp['time_median_s']:.4f} s "
                  f"(min {vjp['time_min_s']:.4f} s, rel. error {vjp['jac_rel_err']:.1e})"
                  f"   -> {ratios[backend][-1]:.2f}x QPLayer")
    # QPLayer's dL/db against the exact KKT one
    _, _, x, z, dl_db = runs[0]
    kkt_s, jac = median_time(lambda: kkt_jacobian(data, x, z), args.repeats)
    exact_db = jac[:, n : n + n_eq].sum(axis=0)
    err = np.linalg.norm(dl_db - exact_db) / np.linalg.norm(exact_db)
    print(f"QPLayer dL/db rel. error vs KKT {err:.1e}")
    for backend in backends:
        print(f"altdiff {backend:<8} forward + VJP: {np.median(ratios[backend]):.2f}x QPLayer "
              f"(median of {args.rounds} rounds: "
              + ", ".join(f"{v:.2f}" for v in ratios[backend]) + ")")
    if args.no_jacobian:
        return 0
    print(f"KKT numpy/scipy full Jacobian (q, b, h) after the forward: {kkt_s:.3f} s "
          f"(+ forward {fwd:.3f} s = {kkt_s + fwd:.3f} s)")
    for backend in backends:
        jac_total = altdiff_derivatives_total(
            args, path, "Jacobian q,b,h: Alt-Diff limit", backend
        )
        print(f"altdiff {backend:<8} forward + full Jacobian (q, b, h) {jac_total:.3f} s "
              f"-> {(kkt_s + fwd) / jac_total:.1f}x numpy/scipy KKT")
    return 0


if __name__ == "__main__":
    sys.exit(main())

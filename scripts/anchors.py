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
  (forward + VJP; eps_backward 1e-4, rho_backward = mu_backward = 1e-6, QPLayer's defaults).
* KKT (numpy/scipy): the full Jacobian of x wrt (q, b, h) from an LU factorization of the
  KKT matrix on the active set at proxqp's solution (forward not included).
* altdiff, per backend of --backends (faer, faer-f32): `altdiff bench --problem FILE
  --backend B --stop residual:1e-6`, row
  `altdiff-vjp-limit` (forward + VJP of d(sum x)/db), and `altdiff derivatives --problem FILE
  --stop residual:1e-6`, row `Jacobian q,b,h: Alt-Diff limit` (setup + forward + the full
  Jacobian of x wrt q, b, h in one solve).

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
        qp=qp, loss_derivative=rhs, eps=1e-4, rho_backward=1e-6, mu_backward=1e-6
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n-eq", type=int, default=500)
    parser.add_argument("--n-ineq", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--altdiff", default="target/release/altdiff")
    parser.add_argument("--backends", default="faer,faer-f32",
                        help="altdiff backends, comma-separated (faer-f32: H in single "
                             "precision, the polish and the VJP refined to f64)")
    args = parser.parse_args()

    data = seed_problem(args.n, args.n_eq, args.n_ineq, args.seed)
    path = os.path.join(tempfile.mkdtemp(), "anchor.npz")
    np.savez(path, **data)

    runs = [qplayer(data) for _ in range(args.repeats)]
    fwd = float(np.median([r[0] for r in runs]))
    fwd_vjp = float(np.median([r[1] for r in runs]))
    _, _, x, z, dl_db = runs[0]
    kkt_s, jac = median_time(lambda: kkt_jacobian(data, x, z), args.repeats)


    # QPLayer's dL/db against the exact KKT one
    n, n_eq = args.n, args.n_eq
    exact_db = jac[:, n : n + n_eq].sum(axis=0)
    err = np.linalg.norm(dl_db - exact_db) / np.linalg.norm(exact_db)

    print(f"problem: seed generator, (n, n_eq, n_ineq) = ({n}, {n_eq}, {args.n_ineq}), "
          f"{args.repeats} repeats, medians, threads: OMP={os.environ.get('OMP_NUM_THREADS')}")
    print(f"QPLayer core   forward {fwd:.3f} s   forward + VJP {fwd_vjp:.3f} s   "
          f"dL/db rel. error vs KKT {err:.1e}")
    print(f"KKT numpy/scipy full Jacobian (q, b, h) after the forward: {kkt_s:.3f} s "
          f"(+ forward {fwd:.3f} s = {kkt_s + fwd:.3f} s)")
    for backend in args.backends.split(","):
        vjp = altdiff_rows(args.altdiff, path, args, "b", "altdiff-vjp-limit", backend)
        jac_total = altdiff_derivatives_total(
            args, path, "Jacobian q,b,h: Alt-Diff limit", backend
        )
        print(f"altdiff {backend:<8} forward + VJP {vjp['time_median_s']:.3f} s "
              f"(rel. error {vjp['jac_rel_err']:.1e})   -> {fwd_vjp / vjp['time_median_s']:.1f}x QPLayer")
        print(f"altdiff {backend:<8} forward + full Jacobian (q, b, h) {jac_total:.3f} s "
              f"-> {(kkt_s + fwd) / jac_total:.1f}x numpy/scipy KKT")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Entropic layers against their closed form: x = min(u, exp(y - tau)), Jacobians by the
free / capped split. Usage: layer_check.py ALTDIFF [COUNT]"""
import json, subprocess, sys, tempfile, os
import numpy as np

def closed(y, u):
    n = len(y)
    if u is None:
        u = np.full(n, np.inf)
        top = y.max(); lo = hi = top + np.log(np.exp(y - top).sum())
    else:
        lo, hi = np.min(y - np.log(u)) - 1, np.max(y) + np.log(n) + 1
    # water level by bisection in a safe window
    for _ in range(3000 if lo < hi else 0):
        mid = 0.5 * (lo + hi)
        f = np.minimum(u, np.exp(np.minimum(y - mid, 700))).sum()
        lo, hi = (mid, hi) if f > 1 else (lo, mid)
        if hi - lo < 1e-15 * max(1, abs(hi)): break
    tau = 0.5 * (lo + hi)
    e = np.exp(np.minimum(y - tau, 700))
    capped = e >= u
    x = np.where(capped, u, e)
    free = ~capped
    S = x[free].sum()
    jy = np.zeros((n, n)); ju = np.zeros((n, n))
    xf = np.where(free, x, 0)
    jy = np.diag(xf) - np.outer(xf, xf) / S
    for k in np.where(capped)[0]:
        ju[:, k] = -xf / S
        ju[k, k] = 1
    return x, jy, ju

def run(exe, kind, y, u):
    with tempfile.TemporaryDirectory() as d:
        yp = os.path.join(d, "y.json"); json.dump(list(y), open(yp, "w"))
        args = [exe, "layer", kind, "--y", yp, "--wrt", "y,u" if u is not None else "y"]
        if u is not None:
            up = os.path.join(d, "u.json"); json.dump(list(u), open(up, "w")); args += ["--u", up]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr.strip()[:80]
        return json.loads(r.stdout), None

exe = sys.argv[1]; count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = np.random.default_rng(0)
stats = {}
for case in range(count):
    kind = ["softmax", "csoftmax"][case % 2]
    scale = [1, 10, 100, 1000][(case // 2) % 4]
    n = [3, 10, 40][(case // 8) % 3]
    y = rng.normal(size=n) * scale
    u = None
    if kind == "csoftmax":
        u = rng.uniform(0.02, 0.6, size=n)
        if u.sum() < 1.05: u *= 1.05 / u.sum()
    x, jy, ju = closed(y, u)
    d, err = run(exe, kind, y, u)
    key = (kind, scale)
    s = stats.setdefault(key, {"ok": 0, "wrong": 0, "error": 0, "it": [], "xerr": 0, "jerr": 0, "msg": ""})
    if d is None:
        s["error"] += 1; s["msg"] = err
        s.setdefault("cases", []).append((list(y), None if u is None else list(u))); continue
    xe = np.abs(np.array(d["x"]) - x).max()
    je = np.abs(np.array(d["dx_dy"]) - jy).max()
    if u is not None:
        je = max(je, np.abs(np.array(d["dx_du"]) - ju).max())
    good = d["status"] == "solved" and xe < 1e-4 and je < 1e-3
    s["ok" if good else "wrong"] += 1
    s["it"].append(d["iterations"]); s["xerr"] = max(s["xerr"], xe); s["jerr"] = max(s["jerr"], je)
    if not good: s["msg"] = f'{d["status"]} xerr {xe:.1e} jerr {je:.1e}'
    if not good or d is None: s.setdefault("cases", []).append((list(y), None if u is None else list(u)))
for (kind, scale), s in sorted(stats.items()):
    it = np.median(s["it"]) if s["it"] else float("nan")
    print(f'{kind:9s} scale {scale:5d}: right {s["ok"]:3d} wrong {s["wrong"]:3d} error {s["error"]:3d}  median it {it:6.0f}  max|x err| {s["xerr"]:.1e} max|J err| {s["jerr"]:.1e}  {s["msg"]}')

if os.environ.get("DUMP"):
    json.dump([c for s in stats.values() for c in s.get("cases", [])], open(os.environ["DUMP"], "w"))

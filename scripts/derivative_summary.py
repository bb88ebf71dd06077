#!/usr/bin/env python3
"""Summaries of `altdiff suite --json` derivative checks: verdicts, and what other margins
would have given (the report's margin re-applied to the recorded margins).

Usage: python3 scripts/derivative_summary.py SUITE.json
"""
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows if isinstance(rows, list) else rows.get("results", rows)
checked = [r for r in rows if r.get("derivative_error") is not None]
print(f"problems {len(rows)}, solved {sum(r['status']=='solved' for r in rows)}, checked {len(checked)}")
verdicts = {}
for r in rows:
    verdicts[r["derivative_check"]] = verdicts.get(r["derivative_check"], 0) + 1
print("verdicts:", verdicts)
tol = 1e-4
print(f"without the report (every derivative taken as certified): right {sum(r['derivative_error']<=tol for r in checked)}, wrong {sum(r['derivative_error']>tol for r in checked)}")
def margin(r):
    vals = [v for v in (r.get("min_active_multiplier"), r.get("min_inactive_slack")) if v is not None]
    return min(vals) if vals else float("inf")
for m in [1.4e-3, 1e-4, 2e-5, 1e-5, 1e-6, 0.0]:
    right = wrong = flagged = 0
    for r in checked:
        d = r["differentiability"]
        if d in ("degenerate", "not_unique"):
            flagged += 1; continue
        if margin(r) < m:
            flagged += 1; continue
        if r["derivative_error"] <= tol: right += 1
        else: wrong += 1
    print(f"margin {m:g}: right {right}, flagged {flagged}, wrong unflagged {wrong}")
print()
for r in sorted(checked, key=lambda r: r["name"]):
    print(f'{r["name"]:10s} {r["differentiability"]:16s} err {r["derivative_error"]:.1e}  mult {r.get("min_active_multiplier")}  slack {r.get("min_inactive_slack")}  licq {r.get("licq")}')

"""Campaign section models.table2: every row of the DALI paper's Table 2 (benchmarks/grid25.py's
protocol, 5 seeds stacked per row) on the GPU, as long as the budget allows, up to the paper's
31,240 iterations.

It runs last and takes what the budget has left (grid25.paper_rows times each row's iteration
first and gives every row the same length). To fill the table, give it a command of its own:

    PYTHONPATH=. python3 -m benchmarks.gpu_campaign --sections models.table2 --budget-s 540 --out $OUT

The rows are appended to grid25_paper.jsonl in --out (or the working directory) as each finishes;
`python benchmarks/grid25.py --table-from FILE` writes the table with the length of each row.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks import grid25
from benchmarks.campaign_core import Section, SectionResult, register

MIN_SECONDS = 120.0  # below this the rows would train for a few hundred iterations: not worth starting
DRY_RUN = {"models": ("gan", "dali"), "seeds": 2, "calibration_steps": 2, "max_steps": 4}


def _estimate(ctx) -> float:
    return 20.0 if ctx.dry_run else 8 * 31_240 * 0.004  # 4 ms an iteration of 5 stacked seeds, a guess


def _run(ctx) -> SectionResult:
    out = ctx.config.out or Path(".")
    log = Path(out) / "grid25_paper.jsonl"
    margin = 30.0  # the report and the other sections' clean-up
    kw = dict(DRY_RUN) if ctx.dry_run else {}
    budget = max(0.0, ctx.left() - margin)
    records = grid25.paper_rows(device=str(ctx.device), budget_seconds=budget, log=log, **kw)
    rows = [{"model": r["model"], "seed": r["seed"], "iterations": r["steps"], **r["metrics"]} for r in records]
    summary = []
    for m in dict.fromkeys(r["model"] for r in records):
        rs = [r for r in records if r["model"] == m]
        modes = sum(r["metrics"]["modes"] for r in rs) / len(rs)
        hq = sum(r["metrics"]["high_quality_percent"] for r in rs) / len(rs)
        summary.append({"what": f"Table 2 {m}", "result": f"{modes:.1f} modes, {hq:.1f} % HQ",
                        "note": f"{len(rs)} seeds, {rs[0]['steps']:,} iterations"})
    notes = [f"rows in {log}; grid25.py --table-from writes the table" if records else
             "no row ran: the budget left was below one iteration of every row"]
    return SectionResult(rows=rows, summary=summary, notes=notes)


register(Section("models.table2", 100, _estimate, _run,
                 "the DALI paper's Table 2 rows, 5 seeds stacked, as long as the budget allows",
                 partial_after_s=MIN_SECONDS))

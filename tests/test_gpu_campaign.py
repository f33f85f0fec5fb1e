"""The GPU campaign (benchmarks/gpu_campaign.py) without a GPU: its dry run end to end, and the parts
that decide what a real run reports: a wrong or unwritten result fails its case, the budget skips
what would overrun it, a crashing case costs only itself, the tile override reaches the launchers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import implicitdiv as idv
from benchmarks import campaign_models, gpu_campaign
from benchmarks.campaign_correctness import Case, poisoned_outputs, uncovered
from benchmarks.campaign_internals import tiles_overridden
from implicitdiv.fused.triton import pairwise as tp

ROOT = Path(__file__).resolve().parent.parent
core = gpu_campaign.load_sections()


def test_dry_run_runs_every_section_and_prints_the_summary_last(tmp_path):
    out = tmp_path / "campaign"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_campaign", "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["campaign.json", "grid25_paper.jsonl", "grid25_paper_curve.jsonl",
                                                     "report.md"]
    data = json.loads((out / "campaign.json").read_text())
    sections = {s["name"]: s for s in data["sections"]}
    assert list(sections) == [s.name for s in core.ordered()], "sections ran out of their order"
    assert all(s["status"] == "ran" for s in sections.values()), {n: s.get("note") for n, s in sections.items()}
    for name in ("correctness.pairwise", "correctness.losses"):
        rows = sections[name]["rows"]
        assert rows and all(r["status"] == "pass" for r in rows), [r for r in rows if r["status"] != "pass"]
    for name in ("timing.targets", "timing.losses", "timing.mixture", "timing.mmd_test", "timing.mmd2_grid"):
        assert any("triton ms" in r for r in sections[name]["rows"]), f"{name} timed nothing"
    assert all(r["status"] == "ok" for r in sections["sweep.tiles"]["rows"])
    trained = {r["model"] for r in sections["models.table2"]["rows"]}
    assert trained == set(campaign_models.DRY_RUN["models"]), f"Table 2 rows trained: {trained}"
    tail = done.stdout[done.stdout.rindex("## Summary"):]
    assert "wrote" not in tail and tail.count("\n|") >= len(sections)


def test_every_triton_backed_function_has_correctness_cases():
    assert uncovered(torch.device("cuda"), tiny=False) == []
    assert uncovered(torch.device("cpu"), tiny=True) == []


def _kernel_sum_case(dev="cpu") -> Case:
    shapes = (("x", (19, 5)), ("y", (17, 5)), ("x_weights", (19, 2)), ("y_weights", (17, 2)))
    return Case("kernel_sum", shapes, (("kernel", "rbf"), ("bandwidth", 1.0)), ("x", "y", "x_weights", "y_weights"),
                "float32", "ieee", 3, dev)


def test_a_case_passes_and_a_planted_error_fails_it(monkeypatch):
    assert _kernel_sum_case().run()["status"] == "pass"
    forward = tp.kernel_sum_forward

    def misses_the_last_column(x, y, a, b, *args, **kwargs):  # a tile-edge bug: y's last row never seen
        return forward(x, y[:, :-1].contiguous(), a, b[:, :-1].contiguous(), *args, **kwargs)
    monkeypatch.setattr(tp, "kernel_sum_forward", misses_the_last_column)
    result = _kernel_sum_case().run()
    assert result["status"] == "fail" and "out0" in result["error"], result


def test_an_output_the_kernel_never_writes_fails_its_case(monkeypatch):
    with poisoned_outputs():
        assert torch.isnan(torch.empty(4)).all()
    monkeypatch.setattr(tp, "kernel_sum_forward", lambda x, y, a, b, *r, **k: torch.empty((a.shape[0], a.shape[2])))
    result = _kernel_sum_case().run()
    assert result["status"] == "fail" and "NaN" in result["error"], result


def _section(name, order, estimate, run=None, partial=None):
    return core.Section(name, order, lambda ctx: estimate, run or (lambda ctx: core.SectionResult()),
                        partial_after_s=partial)


def test_the_budget_skips_what_would_overrun_it_and_an_error_stops_only_its_section():
    ctx = core.Context(core.Config(dry_run=True, budget_s=30.0, out=None, workers=0))

    def broken(ctx):
        raise RuntimeError("planted")
    unknowable = core.Section("unknowable", 6, broken, lambda ctx: core.SectionResult())
    core.run_sections(ctx, [_section("cheap", 1, 1.0), _section("dear", 2, 100.0), _section("broken", 3, 1.0, broken),
                            _section("partial", 4, 100.0, partial=5.0), _section("late", 5, 1.0), unknowable],
                      log=lambda m: None)
    status = {r["name"]: r["status"] for r in ctx.records}
    assert status == {"cheap": "ran", "dear": "skipped", "broken": "error", "partial": "ran", "late": "ran",
                      "unknowable": "error"}
    notes = {r["name"]: r.get("note", "") for r in ctx.records}
    assert "skipped: estimated" in notes["dear"] and "planted" in notes["broken"] and "runs what fits" in notes["partial"]


class Returns:
    def __init__(self, value):
        self.value = value

    def run(self):
        return {"status": "pass", "value": self.value}


class Exits:
    def run(self):
        os._exit(7)


class Raises:
    def run(self):
        raise ValueError("planted")


def test_a_crashing_task_costs_only_itself():
    pool = core.WorkerPool(1, deadline=time.monotonic() + 300)
    try:
        results = pool.run([Returns(1), Exits(), Raises(), Returns(2)])
    finally:
        pool.close()
    assert [r["status"] for r in results] == ["pass", "crashed", "error", "pass"], results
    assert results[3]["value"] == 2 and "exited with code 7" in results[1]["error"] and "planted" in results[2]["error"]


def test_the_tile_override_reaches_the_launchers():
    x, y = torch.randn(20, 3), torch.randn(18, 3)
    default = idv.mmd2(x, y, backend="triton")
    with tiles_overridden("rows", rows=32, cols=16) as used:
        other = idv.mmd2(x, y, backend="triton")
    assert used, "mmd2 no longer asks blocks() for its tiles: the sweep would measure the defaults"
    torch.testing.assert_close(other, default, rtol=1e-5, atol=1e-6)


def test_plan_gives_every_section_an_estimate(capsys):
    assert gpu_campaign.main(["--plan"]) == 0
    printed = capsys.readouterr().out
    for s in core.ordered():
        line = next(l for l in printed.splitlines() if l.startswith(f"| {s.name} |"))
        assert float(line.split("|")[2]) > 0, line

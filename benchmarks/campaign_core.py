"""The machinery of the GPU campaign (benchmarks/gpu_campaign.py): the section registry, the run's
context and time budget, the interleaved timer, the pool of worker processes that runs correctness
cases and pre-compiles kernels in parallel, and the report writer.

A section is registered with `register(Section(name, order, estimate, run, about))`: sections run in
ascending `order`; `estimate(ctx)` says, before it runs, how many seconds it should take (from the
floors measured on the device, or the vendor peaks before those are measured), and the section is
skipped with a note when that would overrun the budget (unless it sets `partial_after_s` and that
much is left: then it runs what fits, row by row); `run(ctx)` returns a `SectionResult`.
"""
from __future__ import annotations

import gc
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

MAX_FILES = 8  # what the device tool brings back from $OUT


# ---- sections ----------------------------------------------------------------------------------

@dataclass
class SectionResult:
    rows: list[dict] = field(default_factory=list)  # the section's full table (report and JSON)
    summary: list[dict] = field(default_factory=list)  # {"what", "result", "note"}: lines of the summary table
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    name: str
    order: int
    estimate: Callable[["Context"], float]
    run: Callable[["Context"], SectionResult]
    about: str = ""
    partial_after_s: float | None = None  # a section that checks the budget row by row runs, given this much


REGISTRY: dict[str, Section] = {}


def register(section: Section) -> Section:
    if section.name in REGISTRY:
        raise ValueError(f"a campaign section named {section.name!r} is already registered")
    REGISTRY[section.name] = section
    return section


def ordered(names=None) -> list[Section]:
    """The registered sections in run order; with `names`, only those (unknown names raise)."""
    if names:
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown section(s) {unknown}; known: {sorted(REGISTRY)}")
    return sorted((s for s in REGISTRY.values() if not names or s.name in names), key=lambda s: s.order)


# ---- the run -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    dry_run: bool
    budget_s: float
    out: Path | None
    workers: int
    sections: tuple[str, ...] = ()


class Context:
    """What the sections share: the device, the clock and budget, the floors, the worker pool."""

    def __init__(self, config: Config):
        self.config = config
        self.device = torch.device("cpu" if config.dry_run else "cuda")
        self.started = time.monotonic()
        self.floors: dict = {}  # filled by the floors section; estimates fall back to vendor peaks
        self.records: list[dict] = []  # one per section: name, status, estimate, seconds, result
        self.calibration = 1.0  # measured / estimated seconds of the sections run so far
        self._pool: WorkerPool | None = None

    @property
    def dry_run(self) -> bool:
        return self.config.dry_run

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.config.budget_s - self.elapsed()

    def deadline(self) -> float:
        """The monotonic time at which the budget is spent."""
        return self.started + self.config.budget_s

    def pool(self) -> "WorkerPool":
        if self._pool is None:
            self._pool = WorkerPool(self.config.workers, self.deadline())
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def recalibrate(self):
        """Later estimates are scaled by how far the earlier ones missed (clipped to [0.5, 4])."""
        ran = [r for r in self.records if r["status"] == "ran" and r["estimate_s"] > 0 and not r.get("note")]
        est = sum(r["estimate_s"] for r in ran)
        if est > 0:
            self.calibration = min(4.0, max(0.5, sum(r["seconds"] for r in ran) / est))


def run_sections(ctx: Context, sections: list[Section], log=print, after_each=lambda: None) -> None:
    """Runs each section unless its calibrated estimate overruns what is left of the budget; a
    section that raises is recorded with its traceback and the next one runs. `after_each` is
    called after every section (the report is rewritten, so a killed run still leaves one)."""
    for s in sections:
        try:
            estimate = max(0.0, float(s.estimate(ctx)))
        except Exception:  # an estimate that cannot be made (an internal moved): the section says so
            ctx.records.append({"name": s.name, "about": s.about, "estimate_s": 0.0, "planned_s": 0.0, "seconds": 0.0,
                                "status": "error", "note": traceback.format_exc(limit=8)})
            log(ctx.records[-1]["note"])
            after_each()
            continue
        planned = estimate * ctx.calibration
        record = {"name": s.name, "about": s.about, "estimate_s": estimate, "planned_s": planned, "seconds": 0.0}
        partial = s.partial_after_s is not None and ctx.left() >= s.partial_after_s
        if planned > ctx.left() and partial:
            record["note"] = f"runs what fits: estimated {planned:.0f} s for all of it, {ctx.left():.0f} s left"
        elif planned > ctx.left():
            record.update(status="skipped", note=f"skipped: estimated {planned:.0f} s, {max(ctx.left(), 0):.0f} s "
                                                 f"of the budget left")
            log(f"== {s.name}: {record['note']}")
            ctx.records.append(record)
            after_each()
            continue
        log(f"== {s.name} (estimate {planned:.0f} s, {ctx.left():.0f} s left): {s.about}"
            + (f" [{record['note']}]" if record.get("note") else ""))
        start = time.monotonic()
        try:
            result = s.run(ctx)
            record.update(status="ran", result=result)
        except Exception:  # the campaign goes on: the next section may still tell us something
            record.update(status="error", note=traceback.format_exc(limit=8))
            log(record["note"])
        record["seconds"] = time.monotonic() - start
        log(f"   {s.name}: {record['status']} in {record['seconds']:.1f} s")
        ctx.records.append(record)
        ctx.recalibrate()
        after_each()


# ---- timing ------------------------------------------------------------------------------------

@dataclass
class Timing:
    median_s: float
    reps: int
    peak_bytes: int | None  # beyond what was allocated before the call (CUDA only)


def _timed_call(fn, device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_interleaved(calls: dict[str, Callable[[], object]], ctx: "Context", *, min_reps=3, max_reps=30,
                     target_s=0.5) -> dict[str, Timing]:
    """Median seconds of each call, timed with CUDA events (perf_counter on the CPU), repeats
    interleaved across the calls. One warm-up round is excluded; the first timed round also reads
    each call's peak memory; then rounds repeat until each call has about `target_s` of samples (at
    least `min_reps`, at most `max_reps`), or the budget is spent. The dry run times one round."""
    device, deadline = ctx.device, ctx.deadline()
    if ctx.dry_run:
        min_reps = max_reps = 1
    cuda = device.type == "cuda"
    for fn in calls.values():
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = {name: [] for name in calls}
    peaks: dict[str, int | None] = {}
    for name, fn in calls.items():
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        times[name].append(_timed_call(fn, device))
        peaks[name] = torch.cuda.max_memory_allocated() - base if cuda else None
    per_round = sum(t[0] for t in times.values())
    rounds = min(max_reps, max(min_reps, math.ceil(target_s / max(max(t[0] for t in times.values()), 1e-6))))
    for _ in range(rounds - 1):
        if time.monotonic() + per_round > deadline:
            break
        for name, fn in calls.items():
            times[name].append(_timed_call(fn, device))
    return {name: Timing(statistics.median(ts), len(ts), peaks[name]) for name, ts in times.items()}


# ---- the worker pool ---------------------------------------------------------------------------

def _worker_main(tasks, results, current):
    """A worker process: runs tasks (objects with .run() -> dict) until it receives None. The index
    of the task it runs sits in the shared `current` (-1 between tasks), so the parent knows what a
    crash took down; after a CUDA error that leaves the context unusable it exits, and the parent
    starts a fresh worker."""
    import warnings

    warnings.filterwarnings("ignore")
    while True:
        item = tasks.get()
        if item is None:
            return
        idx, task = item
        current.value = idx
        try:
            row = task.run()
        except Exception as exc:  # reported as the task's result; the campaign goes on
            row = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        results.put((idx, row))  # a SimpleQueue writes before it returns: nothing is lost if the process dies next
        current.value = -1
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            gc.collect()
            torch.cuda.empty_cache()  # an idle worker must not sit on memory the timed process needs
        if row.get("status") == "error" and not _cuda_usable():
            os._exit(3)


def _cuda_usable() -> bool:
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return True
    try:
        torch.ones(1, device="cuda").add_(1).item()
        return True
    except Exception:
        return False


@dataclass
class _Worker:
    proc: object
    current: object  # multiprocessing.Value: the index of the task it runs, -1 when idle
    seen: int = -1
    since: float = 0.0


class WorkerPool:
    """Worker processes (spawned: each gets its own CUDA context) that share the run's Triton and
    inductor disk caches, so work compiled in one is loaded, not compiled, elsewhere. `workers` = 0
    runs the tasks in this process."""

    SKIPPED = {"status": "skipped", "error": "the budget ran out before it started"}

    def __init__(self, workers: int, deadline: float, task_timeout_s: float = 180.0):
        self.workers = workers
        self.deadline = deadline
        self.task_timeout_s = task_timeout_s
        self._ctx = mp.get_context("spawn")
        self._tasks = self._ctx.Queue()
        self._results = self._ctx.SimpleQueue()
        self._pool: list[_Worker] = []

    def run(self, tasks: list) -> list[dict]:
        """Each task's result dict, in order. A task not started by the deadline gets
        {"status": "skipped"}; one whose worker died or hung past task_timeout_s gets "crashed"."""
        if self.workers <= 0:
            return [self._inline(t) if time.monotonic() < self.deadline else self.SKIPPED for t in tasks]
        out: list[dict | None] = [None] * len(tasks)
        fed = 0
        while any(r is None for r in out):
            self._reap(out)
            while fed < len(tasks) and fed - sum(r is not None for r in out) < 2 * self.workers:
                if time.monotonic() > self.deadline:
                    out[fed:] = [self.SKIPPED] * (len(tasks) - fed)
                    fed = len(tasks)
                    break
                self._tasks.put((fed, tasks[fed]))
                fed += 1
            if self._results.empty():
                time.sleep(0.05)
            else:
                idx, row = self._results.get()
                out[idx] = row
        return out

    def _reap(self, out):
        """Marks the task of a dead or hung worker as crashed, and keeps `workers` workers alive."""
        now, alive = time.monotonic(), []
        for w in self._pool:
            idx = w.current.value
            if idx != w.seen:
                w.seen, w.since = idx, now
            hung = idx >= 0 and now - w.since > self.task_timeout_s
            if w.proc.is_alive() and not hung:
                alive.append(w)
                continue
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(5)
            if 0 <= idx < len(out) and out[idx] is None:
                out[idx] = {"status": "crashed", "error": f"no result after {self.task_timeout_s:.0f} s" if hung
                            else f"worker exited with code {w.proc.exitcode}"}
        self._pool = alive
        while len(self._pool) < self.workers:
            current = self._ctx.Value("q", -1, lock=False)
            proc = self._ctx.Process(target=_worker_main, args=(self._tasks, self._results, current), daemon=True)
            proc.start()
            self._pool.append(_Worker(proc, current, since=now))

    @staticmethod
    def _inline(task) -> dict:
        try:
            return task.run()
        except Exception as exc:
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}

    def close(self):
        for _ in self._pool:
            self._tasks.put(None)
        for w in self._pool:
            w.proc.join(10)
            if w.proc.is_alive():
                w.proc.kill()
        self._pool = []


# ---- the report --------------------------------------------------------------------------------

def environment(ctx: Context) -> dict:
    import triton

    env = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
           "device": "cpu (dry run, TRITON_INTERPRET=1)" if ctx.dry_run else torch.cuda.get_device_name(),
           "host": platform.node(), "cpus": os.cpu_count(), "budget_s": ctx.config.budget_s,
           "workers": ctx.config.workers, "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    if not ctx.dry_run:
        props = torch.cuda.get_device_properties(0)
        env.update(sms=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}")
    return env


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0 or math.isnan(v) or math.isinf(v):
            return str(v)
        a = abs(v)
        return f"{v:.3g}" if a < 1e-2 or a >= 1e4 else f"{v:.4g}"
    return str(v).replace("|", "/").replace("\n", " ")


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def summary_rows(ctx: Context) -> list[dict]:
    rows = []
    for rec in ctx.records:
        head = {"section": rec["name"], "status": rec["status"],
                "s (est)": f"{rec['seconds']:.0f} ({rec['planned_s']:.0f})"}
        result = rec.get("result")
        if result is None or not result.summary:
            rows.append({**head, "what": "", "result": rec.get("note", "").strip().splitlines()[-1:] and
                         rec.get("note", "").strip().splitlines()[-1] or "", "note": ""})
            continue
        for line in result.summary:
            rows.append({**head, "what": line.get("what", ""), "result": line.get("result", ""),
                         "note": line.get("note", "")})
            head = {"section": "", "status": "", "s (est)": ""}
    return rows


def write_report(ctx: Context, env: dict, argv: list[str]) -> list[Path]:
    """report.md and campaign.json into --out (at most MAX_FILES files)."""
    out = ctx.config.out
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# GPU campaign report{' (dry run)' if ctx.dry_run else ''}", "",
          "`python -m benchmarks.gpu_campaign " + " ".join(argv) + "`", "",
          markdown_table([env]), "", "## Summary", "", markdown_table(summary_rows(ctx)), ""]
    if ctx.floors:
        md += ["## Floors used", "", markdown_table([ctx.floors]), ""]
    for rec in ctx.records:
        md += [f"## {rec['name']}: {rec['status']}", "", rec.get("about", ""), "",
               f"estimate {rec['planned_s']:.0f} s, took {rec['seconds']:.1f} s", ""]
        if rec.get("note"):
            md += ["```", rec["note"].strip(), "```", ""]
        result = rec.get("result")
        if result is not None:
            md += [f"- {n}" for n in result.notes] + [""]
            md += [markdown_table(result.rows), ""]
    files = [out / "report.md", out / "campaign.json"]
    files[0].write_text("\n".join(md))
    data = {"argv": argv, "environment": env, "floors": ctx.floors, "sections": [
        {k: v for k, v in rec.items() if k != "result"} | (
            {"rows": rec["result"].rows, "summary": rec["result"].summary, "notes": rec["result"].notes}
            if rec.get("result") is not None else {}) for rec in ctx.records]}
    files[1].write_text(json.dumps(data, indent=1, default=str))
    assert len(list(out.iterdir())) <= MAX_FILES, f"more than {MAX_FILES} files in {out}"
    return files

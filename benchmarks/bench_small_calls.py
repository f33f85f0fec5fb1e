"""Small calls: every public function with a fused op at the sizes trainers use (8 to 4096), against
the naive PyTorch it replaces, torch.compile of that naive form, and the code before a change.

    python -m benchmarks.bench_small_calls [--backend cpp] [--before REF] [--only mmd2,kl_std_normal]
                                           [--modes fwd,fwd+bwd,no_grad] [--max-n 4096] [--seconds 0.3]

Modes: "fwd" (a forward in grad mode on inputs that require grad: it builds the graph), "fwd+bwd"
(that forward and torch.autograd.grad of the sum of its outputs), "no_grad" (the forward under
torch.no_grad()). Times are medians over interleaved rounds in this process (each round times a
batch of calls of every variant in turn); read the ratios. The per-call floor (an empty
torch.library custom op, an empty autograd Function forward and backward, a 1-element torch op) is
measured in the same run.

--before REF checks REF out into a scratch worktree, builds its _C there and runs the fused variant
and the naive anchor in a child process with that tree first on the path (the two versions register
the same torch.library ops, so they cannot share a process); its column is its time scaled by the
ratio of the naive anchors of the two processes, so a load difference between them cancels.
With --rounds K the before / fused ratio is instead the median over K pairs of child processes, REF
and this checkout in turn (alternating which goes first), each normalized by its own naive anchor,
printed with its range: one pair cannot tell a change of 20 % from noise at the larger sizes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

if __package__:
    from .small_call_cases import all_cases
else:  # run as a script (the child of --before, with another implicitdiv on the path): the file beside this one
    # an editable install's import hook would find this checkout's implicitdiv before the path's
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    from small_call_cases import all_cases

MODES = ("fwd", "fwd+bwd", "no_grad")
ROOT = Path(__file__).resolve().parent.parent


def _outputs(out):
    items = out if isinstance(out, tuple) else (out,)
    return [o for o in items if isinstance(o, torch.Tensor) and o.requires_grad]


def _runner(fn, xs, mode):
    """A zero-argument callable doing one call of fn in the mode."""
    if mode == "no_grad":
        def run():
            with torch.no_grad():
                fn(*xs)
    elif mode == "fwd":
        def run():
            fn(*xs)
    else:
        def run():
            outs = _outputs(fn(*xs))
            loss = outs[0].sum() if len(outs) == 1 else sum(o.sum() for o in outs)
            torch.autograd.grad(loss, xs, allow_unused=True)
    return run


def _batch_size(run, target=2e-4) -> int:
    start = time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(1000, int(target / once)))


def time_interleaved(runs: dict, seconds: float) -> dict:
    """Median seconds per call of each zero-argument callable, timed in interleaved rounds."""
    for run in runs.values():  # warm-up (and compilation)
        for _ in range(3):
            run()
    batch = {name: _batch_size(run) for name, run in runs.items()}
    per_round = sum(batch[n] * _probe(run) for n, run in runs.items())
    rounds = max(5, min(200, int(seconds / max(per_round, 1e-9))))
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            k = batch[name]
            start = time.perf_counter_ns()
            for _ in range(k):
                run()
            times[name].append((time.perf_counter_ns() - start) / k / 1e9)
    return {name: statistics.median(t) for name, t in times.items()}


def _probe(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure_floor(seconds: float) -> dict:
    """Per-call costs every fused op pays at least once: an empty torch.library custom op (eager, through
    torch's dispatcher), an empty autograd Function (forward and backward through autograd.grad) and
    a 1-element torch op."""
    @torch.library.custom_op("bench_small_calls::empty", mutates_args=())
    def empty(x: torch.Tensor) -> torch.Tensor:
        return x.new_empty(())

    @empty.register_fake
    def _(x):
        return x.new_empty(())

    class Identity(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g

    one = torch.ones(1)
    leaf = torch.ones(1, requires_grad=True)

    def function_fb():
        torch.autograd.grad(Identity.apply(leaf), leaf, one)

    runs = {"empty custom op": lambda: empty(one), "empty autograd Function fwd+bwd": function_fb,
            "1-element torch op": lambda: torch.add(one, one)}
    return time_interleaved(runs, seconds)


def run_cases(backend: str, only, modes, max_n: int, seconds: float, variants: tuple) -> list[dict]:
    rows = []
    for case in all_cases(max_n):
        if only and case.function not in only:
            continue
        gen = torch.Generator().manual_seed(0)
        fused, naive, inputs = case.make(backend, gen)
        for mode in modes:
            if mode == "fwd+bwd" and not case.backward or mode == "fwd" and not case.backward:
                continue
            xs = [t.clone().requires_grad_(mode != "no_grad") for t in inputs]
            fns = {"fused": fused, "naive": naive}
            if "compile(naive)" in variants and case.function != "mmd_test":  # a 100-permutation loop unrolls
                torch._dynamo.reset()  # a fresh cache per case: the cases share the naive forms' code objects
                fns["compile(naive)"] = torch.compile(naive, dynamic=False)
            runs = {name: _runner(fn, xs, mode) for name, fn in fns.items() if name in variants}
            found = time_interleaved(runs, seconds)
            rows.append({"function": case.function, "size": case.size, "mode": mode, **found})
            print(_line(rows[-1]), flush=True)
    return rows


def _us(v):
    return "-" if v is None else f"{1e6 * v:9.1f}"


def _line(row) -> str:
    ratio = row["naive"] / row["fused"]
    comp = row.get("compile(naive)")
    before = row.get("before")
    parts = [f"{row['function']:<24} {row['size']:<18} {row['mode']:<8}", f"naive {_us(row['naive'])} us",
             f"fused {_us(row['fused'])} us", f"naive/fused {ratio:5.2f}"]
    if comp is not None:
        parts.append(f"compile {_us(comp)} us ({comp / row['fused']:5.2f})")
    if before is not None:
        parts.append(f"before {_us(before)} us ({before / row['fused']:5.2f})")
    if "before_range" in row:
        parts.append("range {:.2f}-{:.2f}".format(*row["before_range"]))
    return "  ".join(parts)


def _build_in_place(tree: Path) -> None:
    """The C++ modules of the checkout at `tree`, built into its package folder (setup.py before
    issue 15, CMake's install step after it)."""
    if (tree / "setup.py").exists():
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree, check=True,
                       stdout=subprocess.DEVNULL)
        return
    pybind11_dir = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    build = str(tree / "build-before")
    for cmd in (["cmake", "-S", ".", "-B", build, "-DCMAKE_BUILD_TYPE=Release", f"-DPython_EXECUTABLE={sys.executable}",
                 f"-Dpybind11_DIR={pybind11_dir}"], ["cmake", "--build", build, "-j2"],
                ["cmake", "--install", build, "--prefix", "."]):
        subprocess.run(cmd, cwd=tree, check=True, stdout=subprocess.DEVNULL)


def before_tree(ref: str) -> Path:
    """A scratch worktree of REF with its _C built."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = Path(os.environ.get("TMPDIR", "/tmp")) / f"implicitdiv-before-{sha}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True)
    if not list((tree / "implicitdiv").glob("_C*.so")):
        _build_in_place(tree)
    return tree


def run_child(args, tree: Path | None = None) -> dict:
    """The fused and naive variants in a child process, of the code at `tree` (this checkout when
    None): {(function, size, mode): row}."""
    options = ["--child-json", "--backend", args.backend, "--modes", ",".join(args.modes), "--max-n", str(args.max_n),
               "--seconds", str(args.seconds)] + (["--only", ",".join(args.only)] if args.only else [])
    if tree is None:
        cmd, cwd, env = [sys.executable, "-m", "benchmarks.bench_small_calls", *options], ROOT, dict(os.environ)
    else:
        cmd, cwd = [sys.executable, str(Path(__file__).resolve()), *options], tree
        env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the run of {tree or ROOT} failed:\n{done.stderr[-3000:]}")
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return {(r["function"], r["size"], r["mode"]): r for r in rows}


def before_rounds(ref: str, args) -> dict:
    """before / now per (function, size, mode) from args.rounds pairs of child processes, the code at
    REF and this checkout in turn, each time normalized by its own naive anchor:
    {key: [ratio per round]}."""
    tree = before_tree(ref)
    ratios: dict = {}
    for k in range(args.rounds):
        if k % 2 == 0:
            before, now = run_child(args, tree), run_child(args)
        else:
            now, before = run_child(args), run_child(args, tree)
        for key, b in before.items():
            n = now.get(key)
            if n is not None:
                ratios.setdefault(key, []).append((b["fused"] / b["naive"]) / (n["fused"] / n["naive"]))
        print(f"round {k + 1} of {args.rounds} done", flush=True)
    return ratios


def markdown(rows, floor, before_ref) -> str:
    head = ["function", "size", "mode", "naive eager (us)", "compile(naive) (us)", "fused (us)", "naive / fused",
            "compile / fused"]
    if before_ref:
        head += [f"before ({before_ref}, us)", "before / fused"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        comp = r.get("compile(naive)")
        cells = [r["function"], r["size"], r["mode"], _us(r["naive"]).strip(), _us(comp).strip(), _us(r["fused"]).strip(),
                 f"{r['naive'] / r['fused']:.2f}", "-" if comp is None else f"{comp / r['fused']:.2f}"]
        if before_ref:
            b, spread = r.get("before"), r.get("before_range")
            ratio = "-" if b is None else f"{b / r['fused']:.2f}"
            cells += [_us(b).strip(), ratio if spread is None else ratio + " ({:.2f}-{:.2f})".format(*spread)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Per-call floor in the same run: " + ", ".join(f"{k} {_us(v).strip()} us" for k, v in floor.items()))
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="cpp")
    p.add_argument("--before", default=None, help="a git ref whose fused code to time too")
    p.add_argument("--only", type=lambda s: [f for f in s.split(",") if f], default=None)
    p.add_argument("--modes", type=lambda s: [m for m in s.split(",") if m], default=list(MODES))
    p.add_argument("--max-n", type=int, default=4096)
    p.add_argument("--seconds", type=float, default=0.3, help="time per case and mode, all variants together")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--markdown", default=None, help="write the table here as markdown")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --before: time REF and this checkout in this many alternating pairs of child "
                        "processes and report the median ratio with its range")
    p.add_argument("--child-json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_json:
        rows = run_cases(args.backend, args.only, args.modes, args.max_n, args.seconds, ("fused", "naive"))
        print(json.dumps(rows))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backend {args.backend}", flush=True)
    floor = measure_floor(args.seconds)
    print("floor: " + ", ".join(f"{k} {_us(v).strip()} us" for k, v in floor.items()), flush=True)
    variants = ("fused", "naive") if args.no_compile else ("fused", "naive", "compile(naive)")
    rows = run_cases(args.backend, args.only, args.modes, args.max_n, args.seconds, variants)
    if args.before and args.rounds > 1:
        ratios = before_rounds(args.before, args)
        for r in rows:
            found = ratios.get((r["function"], r["size"], r["mode"]))
            if found:
                r["before"] = statistics.median(found) * r["fused"]
                r["before_range"] = (min(found), max(found))
        print(f"\nwith the code at {args.before} (median of {args.rounds} alternating pairs of processes, each "
              f"scaled by its naive anchor; the range of before / fused over the pairs):")
        for r in rows:
            print(_line(r))
    elif args.before:
        before = run_child(args, before_tree(args.before))
        for r in rows:
            b = before.get((r["function"], r["size"], r["mode"]))
            if b is not None:
                r["before"] = b["fused"] * r["naive"] / b["naive"]
        print(f"\nwith the code at {args.before} (scaled by the naive anchors of the two processes):")
        for r in rows:
            print(_line(r))
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, floor, args.before) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

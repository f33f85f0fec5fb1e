"""``implicitdiv bench`` (also ``python -m implicitdiv.bench``): choose functions, sizes, d, dtypes,
device, backends, C++ instruction sets and peers; print a table, write CSV or JSON, plot time
against N. Works from an installed package: nothing here reads the source tree."""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

from .. import __version__
from .. import backend as backends_mod
from . import output
from .cases import CASES
from .harness import PASSES, PEERS, run

DEFAULT_FUNCTIONS = ("mmd2", "kernel_sum", "gaussian_mixture_logpdf", "adversarial_losses", "gaussian_nll",
                     "kl_std_normal")
QUICK = {"functions": "mmd2,kernel_sum,adversarial_losses,gaussian_nll", "sizes": "512", "dims": "2,16",
         "peers": "naive", "min_time": 0.02}


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--functions", default=",".join(DEFAULT_FUNCTIONS),
                   help=f"comma-separated, or 'all': {', '.join(CASES)}")
    p.add_argument("--sizes", default="1024,4096", help="N values, comma-separated (rows; logits for the ratio losses)")
    p.add_argument("--dims", default="16", help="d values, comma-separated (not used by the ratio losses)")
    p.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64")
    p.add_argument("--device", default=None, choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.add_argument("--backends", default=None, help="comma-separated of reference, cpp, triton (default: all available)")
    p.add_argument("--isa", default=None,
                   help="time cpp once per C++ instruction set: comma-separated (baseline, avx2, avx512) or 'all' "
                        "(every one this CPU runs)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated of naive, compile; or 'none'")
    p.add_argument("--passes", default=",".join(PASSES), help="comma-separated of fwd, fwd+bwd")
    p.add_argument("--baseline", default=None, help="the variant the speedups are relative to (default: naive, else reference)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median is reported")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds of calls per variant per round")
    p.add_argument("--max-gib", type=float, default=4.0, help="skip a variant estimated to need more memory")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (the C++ kernels follow it)")
    p.add_argument("--format", default=None, choices=("table", "csv", "json"),
                   help="what --out holds (default: from its suffix) or, without --out, what is printed")
    p.add_argument("--out", default=None, help="write the rows to this file (.csv or .json)")
    p.add_argument("--plot", default=None, help="PNG of time against N per variant (needs matplotlib)")
    p.add_argument("--quick", action="store_true",
                   help="a short run: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()))


def _error(message: str) -> int:
    print(f"implicitdiv bench: {message}", file=sys.stderr)
    return 2


def main_args(args: argparse.Namespace) -> int:
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    functions = list(CASES) if args.functions == "all" else _list(args.functions)
    unknown = [f for f in functions if f not in CASES]
    if unknown:
        return _error(f"unknown function(s) {', '.join(unknown)}; choices: {', '.join(CASES)}")
    try:
        sizes, dims = [int(s) for s in _list(args.sizes)], [int(s) for s in _list(args.dims)]
    except ValueError:
        return _error("--sizes and --dims take comma-separated integers")
    if not sizes or not dims or min(sizes + dims) < 1:
        return _error("--sizes and --dims need values >= 1")
    dtypes = []
    for name in _list(args.dtypes):
        if name not in ("float32", "float64", "float16", "bfloat16"):
            return _error(f"unknown dtype {name!r}; choices: float32, float64, float16, bfloat16")
        dtypes.append(getattr(torch, name))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        return _error("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    available = backends_mod.backends()
    backends = list(available) if args.backends is None else _list(args.backends)
    missing = [b for b in backends if b not in available]
    if missing:
        return _error(f"backend(s) not available here: {', '.join(missing)} (available: {', '.join(available)}; "
                      "`implicitdiv doctor` says why)")
    peers = [] if args.peers == "none" else _list(args.peers)
    passes = _list(args.passes)
    if any(p not in PEERS for p in peers) or any(p not in PASSES for p in passes):
        return _error(f"--peers takes {', '.join(PEERS)} or none; --passes takes {', '.join(PASSES)}")
    isas: list[str] = []
    if args.isa:
        if "cpp" not in backends:
            return _error("--isa times the cpp backend, which is not among the backends")
        from .. import _C

        isas = list(_C.runnable()) if args.isa == "all" else _list(args.isa)
        for isa in isas:
            try:
                _C.choose(isa, source="--isa")
            except _C.IsaError as e:
                return _error(str(e))
    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "table")
    if fmt not in ("table", "csv", "json"):
        return _error(f"--out {args.out}: say --format csv or json")
    if args.threads:
        torch.set_num_threads(args.threads)

    live = args.out is not None or fmt == "table"  # the table row by row as they come; else only the text at the end

    def progress(row: dict) -> None:
        print(output.table([row]).splitlines()[2], flush=True)

    if live:
        print(output.table([]).splitlines()[0], flush=True)
    rows = run(functions, sizes, dims, dtypes, device, backends, peers, isas, passes, args.repeats, args.min_time,
               args.max_gib, args.baseline, progress if live else None)
    meta = {"implicitdiv": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "device": device,
            "cuda_device": torch.cuda.get_device_name() if device == "cuda" else None,
            "isa": _isa_in_use(), "command": " ".join(sys.argv)}
    text = {"table": output.table(rows), "csv": output.to_csv(rows), "json": output.to_json(rows, meta)}[fmt]
    if args.out:
        Path(args.out).write_text(text + ("" if text.endswith("\n") else "\n"))
        print(f"wrote {len(rows)} rows to {args.out}")
    elif fmt != "table":
        print(text)
    else:
        print(text.splitlines()[-1] if rows else "nothing to time")
    if args.plot:
        panels = output.plot(rows, args.plot)
        print(f"wrote {panels} panel(s) to {args.plot}")
    return 0


def _isa_in_use() -> str | None:
    if not backends_mod.cpp_built():
        return None
    from .. import _C

    return _C.ISA


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="implicitdiv bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return main_args(p.parse_args(argv))

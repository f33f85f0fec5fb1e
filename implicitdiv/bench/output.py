"""The benchmark's rows as a table, CSV or JSON, and a plot of time against N per variant."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

COLUMNS = ("function", "n", "d", "dtype", "device", "pass", "variant", "seconds", "speedup", "baseline", "note")


def _time(sec: float | None) -> str:
    if sec is None:
        return "-"
    if sec < 1e-3:
        return f"{sec * 1e6:8.1f} us"
    return f"{sec * 1e3:8.2f} ms" if sec < 10 else f"{sec:8.2f} s "


def table(rows: list[dict]) -> str:
    head = f"{'function':<24} {'N':>7} {'d':>4} {'dtype':<8} {'pass':<7} {'variant':<14} {'time':>11} {'speedup':>8}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['speedup']:7.2f}x" if r["speedup"] else f"{'':8}"
        d = r["d"] if r["d"] else "-"
        lines.append(f"{r['function']:<24} {r['n']:>7} {d:>4} {r['dtype']:<8} {r['pass']:<7} {r['variant']:<14} "
                     f"{_time(r['seconds']):>11} {ratio}  {r['note']}")
    if rows:
        bases = {r["function"]: r["baseline"] for r in rows}
        lines.append("speedup: the baseline's median time over the variant's; baseline: "
                     + ", ".join(f"{b} ({f})" for f, b in bases.items()) + f"; device {rows[0]['device']}")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k) for k in COLUMNS})
    return buf.getvalue()


def to_json(rows: list[dict], meta: dict) -> str:
    return json.dumps({"meta": meta, "rows": [{k: r.get(k) for k in COLUMNS} for r in rows]}, indent=1)


def plot(rows: list[dict], path: str | Path) -> int:
    """Time against N per variant, log-log, one panel per (function, d, dtype, pass); returns the
    number of panels written to the PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        if r["seconds"] is None:
            continue
        key = (r["function"], r["d"], r["dtype"], r["pass"])
        panels.setdefault(key, {}).setdefault(r["variant"], []).append((r["n"], r["seconds"]))
    if not panels:
        return 0
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.4 * nrows), squeeze=False)
    for ax, (key, series) in zip(axes.flat, panels.items()):
        function, d, dtype, pass_name = key
        for variant, points in series.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=variant)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{function} {pass_name}, {dtype}" + (f", d = {d}" if d else ""), fontsize=9)
        ax.set_xlabel("N")
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(panels)

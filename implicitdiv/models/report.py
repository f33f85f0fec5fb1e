"""Writing benchmark tables into one subsection of benchmarks/RESULTS.md, leaving the rest of the
file (other engineers' sections, and this section's other subsections) as it is."""
from __future__ import annotations

import statistics
from pathlib import Path

SECTION = "## Model set (issue 6)"
PAPERS = "## The papers' tables, run here (issue 12)"


def mean_spread(values: list[float], digits: int = 2) -> str:
    """"mean ± standard deviation" over seeds (population std; "mean" alone for one value)."""
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.pstdev(values):.{digits}f}"


def write_subsection(path: Path, title: str, body: str, section: str = SECTION) -> None:
    """Replace (or append) the '### title' block inside `section` of the markdown file at path."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if section not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n"
    start = text.index(section) + len(section)
    nxt = text.find("\n## ", start)
    end = len(text) if nxt < 0 else nxt + 1
    block = text[start:end]
    heading = f"### {title}"
    new = f"{heading}\n\n{body.strip()}\n\n"
    if heading in block:
        b0 = block.index(heading)
        b1 = block.find("\n### ", b0 + len(heading))
        block = block[:b0] + new + ("" if b1 < 0 else block[b1 + 1:])
    else:
        block = block.rstrip("\n") + "\n\n" + new
    path.write_text(text[:start] + block.rstrip("\n") + "\n" + ("\n" if nxt >= 0 else "") + text[end:].lstrip("\n"))

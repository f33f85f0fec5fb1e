"""Summarize a test run logged with IMPLICITDIV_RUN_LOG (tests/conftest.py): harness runs per function
family, time, failures and the planted-bug rates.

    HYPOTHESIS_PROFILE=thorough IMPLICITDIV_RUN_LOG=out/thorough.jsonl TRITON_INTERPRET=1 \\
        nohup .venv/bin/python -m pytest -q -s tests/test_harness.py ... >> out/thorough.log 2>&1 &
    python -m benchmarks.harness_counts out/thorough.jsonl [out/thorough.log]
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict

from implicitdiv.testing import error_scales

FAMILIES = {**{f: "pairwise" for f in error_scales.PAIRWISE_FUNCTIONS},
            **{f: "ratio losses" for f in error_scales.RATIO_FUNCTIONS},
            **{f: "Gaussian terms" for f in error_scales.GAUSSIAN_FUNCTIONS}}


def main(log: str, output: str | None = None) -> None:
    runs: dict = defaultdict(int)
    seconds = 0.0
    tests, failed = 0, []
    for line in open(log):
        entry = json.loads(line)
        tests += 1
        seconds += entry["seconds"]
        for model, count in entry["runs"].items():
            runs[FAMILIES.get(model, model)] += count
        if entry["outcome"] != "passed":
            failed.append((entry["test"], entry.get("failure", "")[-600:]))
    print(f"{tests} tests, {seconds / 3600:.2f} h of test time")
    for family, count in sorted(runs.items()):
        print(f"  {family:16s} {count:7d} harness runs")
    for test, why in failed:
        print(f"FAILED {test}\n{why}\n")
    if output:
        for line in open(output):
            if re.match(r"\s*planted ", line) or line.lstrip().startswith("planted "):
                print(line.rstrip())


if __name__ == "__main__":
    main(*sys.argv[1:])

import json
import os
import time

# The Triton kernels run on the CPU through the interpreter; it must be set before triton is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

# Every hypothesis test takes its example count from the profile (none pins its own):
#   ci        the default: a few examples per test, so `make test` stays within its time; under CI the
#             same examples on every run (derandomize), so a red CI is reproducible
#   thorough  HYPOTHESIS_PROFILE=thorough: >= 10,000 harness runs per function family over the suite
#             (benchmarks/RESULTS.md, "Equivalence harness", has the counts of its last run)
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=10, derandomize=bool(os.environ.get("CI")), **_COMMON)
settings.register_profile("thorough", max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# IMPLICITDIV_RUN_LOG=path appends one JSON line per finished test: its outcome, duration and the
# harness runs per function family it made (how the thorough profile's counts are recorded).
_LOG = os.environ.get("IMPLICITDIV_RUN_LOG")


def pytest_runtest_logreport(report):
    if not _LOG or report.when != "call":
        return
    from tests.equivalence import RUNS

    runs = dict(RUNS)
    RUNS.clear()
    with open(_LOG, "a") as f:
        f.write(json.dumps({"test": report.nodeid, "outcome": report.outcome, "seconds": round(report.duration, 2),
                            "runs": runs, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            **({"failure": str(report.longrepr)[-3000:]} if report.failed else {})}) + "\n")

"""implicitdiv.bench: rows for every variant asked for, medians of interleaved rounds, speedups
against the baseline, CSV / JSON / PNG output, and clear errors for bad choices."""
import csv
import json

import pytest
import torch

import implicitdiv as idv
from implicitdiv.bench import CASES, cli, harness, output, run

TINY = dict(sizes=[48], dims=[3], dtypes=[torch.float32], device="cpu", repeats=1, min_time=0.001)


@pytest.mark.parametrize("function", list(CASES))
def test_every_function_runs_on_every_backend_and_peer(function):
    rows = run([function], backends=idv.backends(), peers=("naive",), passes=("fwd", "fwd+bwd"), **TINY)
    variants = {r["variant"] for r in rows}
    assert "naive" in variants and "reference" in variants
    for r in rows:
        assert r["seconds"] and r["seconds"] > 0 and r["note"] == "", r
    assert all(r["speedup"] == 1.0 for r in rows if r["variant"] == "naive")


def test_the_naive_peers_compute_what_the_functions_compute():
    for case in CASES.values():
        inputs = case.inputs(37, 3, torch.float64, "cpu")
        assert torch.allclose(case.naive(*inputs), case.call(*inputs, backend="reference"), rtol=1e-10, atol=1e-12), \
            case.function


def test_medians_of_interleaved_rounds_give_the_speedups(monkeypatch):
    """Rounds time the variants in turn (reference, naive, reference, naive, ...); each keeps the
    median of its rounds and the speedup is the baseline's median over its own."""
    given = iter([1.0, 2.0, 3.0, 2.0, 1.0, 2.0])
    monkeypatch.setattr(harness.timing, "seconds", lambda fn, device, min_time: next(given))
    rows = run(["kl_std_normal"], backends=("reference",), peers=("naive",), passes=("fwd",),
               **{**TINY, "repeats": 3})
    got = {r["variant"]: (r["seconds"], r["speedup"]) for r in rows}
    assert got == {"reference": (1.0, 2.0), "naive": (2.0, 1.0)}


@pytest.mark.skipif("cpp" not in idv.backends(), reason="implicitdiv._C is not built")
def test_cpp_once_per_instruction_set_and_the_set_in_use_is_restored():
    from implicitdiv import _C

    before = _C.ISA
    rows = run(["mmd2"], backends=("cpp",), peers=(), isas=_C.runnable(), passes=("fwd",), baseline="cpp[baseline]",
               **TINY)
    assert [r["variant"] for r in rows] == [f"cpp[{i}]" for i in _C.runnable()]
    assert rows[0]["speedup"] == 1.0 and all(r["seconds"] > 0 for r in rows)
    assert _C.ISA == before


def test_a_variant_over_the_memory_cap_is_skipped_with_a_note():
    rows = run(["mmd2"], backends=("reference",), peers=("naive",), passes=("fwd+bwd",), max_gib=1e-9,
               **TINY)
    assert {r["variant"]: r["seconds"] for r in rows} == {"reference": None, "naive": None}
    assert all(r["note"].startswith("skipped: needs") for r in rows)


ARGS = ["--functions", "kl_std_normal,mmd2", "--sizes", "32,64", "--dims", "3", "--passes", "fwd", "--repeats", "1",
        "--min-time", "0.001", "--backends", "reference", "--peers", "naive"]


def test_csv_and_json_files(tmp_path):
    assert cli.main(ARGS + ["--out", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 and set(rows[0]) == set(output.COLUMNS)
    assert cli.main(ARGS + ["--out", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["rows"]) == 8 and data["meta"]["torch"] == torch.__version__


def test_json_to_stdout_is_the_only_output(capsys):
    assert cli.main(ARGS + ["--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 8


def test_plot_has_a_panel_per_function(tmp_path):
    pytest.importorskip("matplotlib")
    assert cli.main(ARGS + ["--plot", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--functions", "mmd3"], "unknown function(s) mmd3"),
    (["--sizes", "a"], "comma-separated integers"),
    (["--dtypes", "int8"], "unknown dtype"),
    (["--backends", "cuda"], "not available here: cuda"),
    (["--peers", "jax"], "--peers takes"),
    (["--isa", "sse9", "--backends", "cpp"], "--isa='sse9'"),
    (["--out", "x.txt"], "say --format csv or json"),
])
def test_bad_choices_give_one_line_and_exit_code_2(args, message, capsys):
    if "--isa" in args and "cpp" not in idv.backends():
        pytest.skip("implicitdiv._C is not built")
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_small_calls_time_the_compiled_naive_form(monkeypatch):
    import benchmarks.bench_small_calls as small

    compiled = []
    monkeypatch.setattr(small.torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)
    monkeypatch.setattr(small, "time_interleaved", lambda runs, seconds: {k: 1.0 for k in runs})
    variants = ("fused", "naive", "compile(naive)")
    rows = small.run_cases("reference", ("kl_std_normal",), ("no_grad",), 8, 0.0, variants)
    assert rows and all("compile(naive)" in r for r in rows) and len(compiled) == len(rows)


def test_small_calls_before_rounds_alternate_and_take_the_median(monkeypatch):
    import argparse

    import benchmarks.bench_small_calls as small

    order, key = [], ("mmd2", "N=8", "no_grad")
    before_times = iter([2.0, 3.0, 9.0])  # fused time of REF in rounds 1-3; this checkout's is 1.0

    def child(args, tree=None):
        order.append("before" if tree else "now")
        return {key: {"fused": next(before_times) if tree else 1.0, "naive": 1.0}}

    monkeypatch.setattr(small, "before_tree", lambda ref: "tree")
    monkeypatch.setattr(small, "run_child", child)
    ratios = small.before_rounds("REF", argparse.Namespace(rounds=3))
    assert order == ["before", "now", "now", "before", "before", "now"]
    assert ratios == {key: [2.0, 3.0, 9.0]}

"""Every model of the set trains on the 5 x 5 grid without NaN and beats its untrained network on
its own metric; the reference and the fused C++ backend give the same loss curve; the `train`
command writes its three files."""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

import implicitdiv as idv
from implicitdiv.models import MODELS, TrainConfig, evaluate, load_data, train
from implicitdiv.models.trainer import run_from_cli
from implicitdiv.ops import registry as op_registry

from .equivalence import assert_close

STEPS = 200


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny networks on a shared 2-core machine: a second thread only adds contention
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def grid():
    return load_data("grid25")


# BEGAN's critic starts pushing generated samples away only once k_t, which moves by
# lambda_k = 1e-3 per step, has grown: it needs more steps than the others to move at all.
STEPS_FOR = {"began": 3 * STEPS}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_trains_without_nan_and_improves_its_metric(model, grid):
    steps = STEPS_FOR.get(model, STEPS)
    untrained = evaluate(train(model, grid, backend="reference", seed=0, config=TrainConfig(steps=0, progress=False)))
    run = train(model, grid, backend="reference", seed=0, config=TrainConfig(steps=steps, batch_size=64, progress=False))
    for name, curve in run.history.items():
        assert len(curve) == steps and all(math.isfinite(v) for v in curve), f"{model}: {name} is not finite"
    trained = evaluate(run)
    metric = MODELS[model].metric
    assert trained[metric] < 0.9 * untrained[metric], f"{model}: {metric} {untrained[metric]:.4g} -> {trained[metric]:.4g}"


def _fully_fused(model: str) -> bool:
    uses = MODELS[model].uses
    return bool(uses) and all(op_registry.has("cpp", f) for f in uses)


CURVE_STEPS = 30


@pytest.mark.parametrize("model", sorted(MODELS))
def test_reference_and_cpp_give_the_same_loss_curve(model, grid):
    if "cpp" not in idv.backends():
        pytest.skip("implicitdiv.backends() lacks 'cpp': the C++ extension is not built")
    uses = MODELS[model].uses
    if not uses:
        pytest.skip(f"{model} calls no implicitdiv function that takes a backend (its energies are reconstruction errors)")
    if not _fully_fused(model):
        missing = [f for f in uses if not op_registry.has("cpp", f)]
        pytest.skip(f"cpp has no fused {', '.join(missing)} yet (implicitdiv/ops/registry.py)")
    config = TrainConfig(steps=CURVE_STEPS, batch_size=64, progress=False)
    ref = train(model, grid, backend="reference", seed=3, config=config).history
    fast = train(model, grid, backend="cpp", seed=3, config=config).history
    assert ref.keys() == fast.keys()
    for name in ("generator", "discriminator"):
        if name in ref:
            assert_close(torch.tensor(fast[name]), torch.tensor(ref[name]), torch.float32, f"{model} {name} curve")


def test_curve_comparison_can_fail(grid):
    """The same comparison between two seeds must fail: the check above is not vacuous."""
    config = TrainConfig(steps=CURVE_STEPS, batch_size=64, progress=False)
    a = train("gan", grid, backend="reference", seed=3, config=config).history["generator"]
    b = train("gan", grid, backend="reference", seed=4, config=config).history["generator"]
    with pytest.raises(AssertionError):
        assert_close(torch.tensor(b), torch.tensor(a), torch.float32, "seed 4 vs seed 3")


def test_same_seed_same_curve(grid):
    config = TrainConfig(steps=20, batch_size=64, progress=False)
    a = train("wgan_gp", grid, backend="reference", seed=1, config=config).history
    b = train("wgan_gp", grid, backend="reference", seed=1, config=config).history
    assert a == b


@pytest.mark.parametrize("model,data_name", [("vae", "grid25"), ("gan", "digits")])
def test_train_command_writes_its_files(model, data_name, tmp_path, capsys):
    out = tmp_path / "run"
    args = argparse.Namespace(model=model, data=data_name, steps=15, backend="reference", seed=2, out=str(out))
    assert run_from_cli(args) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["model"] == model and record["steps"] == 15 and "mmd2" in record["metrics"]
    samples = np.load(out / "samples.npy")
    assert samples.shape == (2500, load_data(data_name).dim) and np.isfinite(samples).all()
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "reconstructions.png").exists() == MODELS[model].encoder
    if data_name == "grid25":
        assert {"modes", "high_quality_percent", "reconstruction_mse"} <= set(record["metrics"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"] == model


def test_train_command_rejects_bad_arguments(tmp_path):
    bad_model = argparse.Namespace(model="nope", data="grid25", steps=1, backend=None, seed=0, out=str(tmp_path))
    with pytest.raises(ValueError, match="model must be one of"):
        run_from_cli(bad_model)
    bad_steps = argparse.Namespace(model="gan", data="grid25", steps=-3, backend=None, seed=0, out=str(tmp_path))
    with pytest.raises(ValueError, match="steps"):
        run_from_cli(bad_steps)
    with pytest.raises(ValueError, match="backend"):
        train("gan", load_data("ring8"), backend="fast", config=TrainConfig(steps=1, progress=False))


def test_implicitdiv_train_subcommand(tmp_path, capsys):
    from implicitdiv import cli

    out = tmp_path / "cli"
    assert cli.main(["train", "dali", "--data", "ring8", "--steps", "5", "--seed", "1", "--out", str(out)]) == 0
    assert {"metrics.json", "samples.npy", "samples.png", "reconstructions.png"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "metrics.json").read_text())["data"] == "ring8"


@pytest.mark.parametrize("field,value,match", [("steps", -1, "steps"), ("batch_size", 0, "batch_size"),
                                               ("lr", float("nan"), "lr"), ("arch", "huge", "arch")])
def test_train_rejects_a_bad_config(field, value, match, grid):
    config = TrainConfig(progress=False, **{field: value})
    with pytest.raises(ValueError, match=match):
        train("gan", grid, config=config)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_spec_uses_names_exactly_the_backend_functions_a_step_calls(model, grid, monkeypatch):
    """`uses` decides whether the cpp curve test runs and which backend the step-time benchmark
    picks, so it must be exact: spy on the backend resolver of every public module."""
    import importlib

    seen = set()
    for name in ("gaussian", "kernel_sums", "mmd", "ratio"):
        module = importlib.import_module(f"implicitdiv.{name}")
        def spy(backend, function, device, _resolve=module.resolve):
            seen.add(function)
            return _resolve(backend, function, device)

        monkeypatch.setattr(module, "resolve", spy)
    train(model, grid, backend="reference", seed=0, config=TrainConfig(steps=1, batch_size=8, progress=False))
    assert seen == set(MODELS[model].uses)

"""Every model of the set trains on the 5 x 5 grid without NaN and beats its untrained networks on
its own metric, over several seeds; seeds stacked into one set of networks train as each seed
alone; the reference and the fused C++ backend give the same loss curve; the `train` command
writes its three files, on a new data file too; the papers' structure (DALI's critic sees x
only, AS-VAE's two critics, VIDM's five critics); the unrolled critic is Adam replayed."""
from __future__ import annotations

import argparse
import copy
import json
import math

import numpy as np
import pytest
import torch

import implicitdiv as idv
from implicitdiv.models import (MODELS, TrainConfig, evaluate, evaluate_seeds, load_data, networks, run_from_cli, train,
                                trainer)
from implicitdiv.models.unrolled import unrolled_logits

from .equivalence import assert_close

STEPS = 200
SEEDS = list(range(6))
# Measured with `python benchmarks/grid25.py --training-spread 12` (12 seeds, 200 steps, batch 64,
# toy networks): the ratio trained / untrained metric of one seed reaches 1.02 (BEGAN), 0.83
# (DALI-f), 0.78 (f-GAN Pearson); the mean of the 6 worst seeds of 12 is at most 0.82 (BEGAN). A
# GAN's trajectory changes with the CPU's rounding as it does with the seed, so the test asserts on
# the mean over six seeds, with a threshold above every six-seed mean seen.
IMPROVEMENT = 0.9


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


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_trains_without_nan_and_improves_its_metric(model, grid):
    metric = MODELS[model].metric
    untrained = evaluate_seeds(train(model, grid, seeds=SEEDS, backend="reference",
                                     config=TrainConfig(steps=0, progress=False)))
    run = train(model, grid, seeds=SEEDS, backend="reference", config=TrainConfig(steps=STEPS, batch_size=64,
                                                                                 progress=False))
    for name, curve in run.history.items():
        assert len(curve) == STEPS and all(math.isfinite(v) for v in curve), f"{model}: {name} is not finite"
    trained = evaluate_seeds(run)
    ratios = [t[metric] / u[metric] for t, u in zip(trained, untrained)]
    assert all(math.isfinite(r) for r in ratios), f"{model}: {metric} ratios {ratios}"
    assert np.mean(ratios) < IMPROVEMENT, f"{model}: {metric} trained / untrained per seed {np.round(ratios, 3)}"


def _params(run, index):
    """The parameters and buffers of seed `index` of a run, flattened per tensor."""
    out = {}
    for name, value in run.nets.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        s = len(run.seeds)
        out[name] = value[index] if value.shape[0] == s else value.view(s, -1)[index]  # BN stats: (S * n,)
    return out


def _stack_against_alone(model, arch, steps, seeds=(3, 1, 4)):
    data = {s: load_data("grid25", seed=s) for s in seeds}
    config = TrainConfig(steps=steps, batch_size=16, progress=False, dtype=torch.float64, arch=arch)
    stacked = train(model, [data[s] for s in seeds], seeds=list(seeds), backend="reference", config=config)
    worst = 0.0
    for i, s in enumerate(seeds):
        alone = _params(train(model, data[s], seed=s, backend="reference", config=config), 0)
        for name, value in _params(stacked, i).items():
            worst = max(worst, float((value.reshape(-1) - alone[name].reshape(-1)).abs().max()))
    return worst


@pytest.mark.parametrize("model", ["gan", "dali", "ali", "unrolled_gan", "sngan", "vidm", "began", "wgan_gp", "asvae",
                                   "vaegan", "infogan", "gmmn", "wgan"])
def test_stacked_seeds_train_as_each_seed_alone(model):
    """Seed s of a stack of seeds (3, 1, 4) ends with the parameters of the run of seed s alone:
    float64, 5 iterations, to rounding."""
    assert _stack_against_alone(model, "toy", 5) < 1e-12


def test_stacked_seeds_with_batch_norm():
    """The paper networks (batch norm): equal to rounding, except that the biases just before a
    batch norm have a gradient that is exactly 0 in exact arithmetic (the norm removes them) and
    rounding noise (~1e-17) in floating point, which Adam scales to ~lr * |g| / eps ~ 1e-10."""
    assert _stack_against_alone("dali", "paper", 2) < 1e-8


def test_stacked_seeds_can_differ_from_alone():
    """The comparison above fails for seeds that do not match: it is not vacuous."""
    data = load_data("grid25")
    config = TrainConfig(steps=3, batch_size=16, progress=False, dtype=torch.float64)
    a = _params(train("gan", data, seeds=[3, 1], backend="reference", config=config), 0)
    b = _params(train("gan", data, seed=1, backend="reference", config=config), 0)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-3


def _fully_fused(model: str) -> bool:
    uses = MODELS[model].uses
    return bool(uses) and all("cpp" in idv.backends(f) for f in uses)


CURVE_STEPS = 30


@pytest.mark.parametrize("model", sorted(MODELS))
def test_reference_and_cpp_give_the_same_loss_curve(model, grid):
    if "cpp" not in idv.backends():
        pytest.skip("implicitdiv.backends() lacks 'cpp': the C++ extension is not built")
    uses = MODELS[model].uses
    if not uses:
        pytest.skip(f"{model} calls no implicitdiv function that takes a backend (its energies are reconstruction errors)")
    if not _fully_fused(model):
        missing = [f for f in uses if "cpp" not in idv.backends(f)]
        pytest.skip(f"cpp has no fused {', '.join(missing)} yet (implicitdiv/ops/registry.py)")
    config = TrainConfig(steps=CURVE_STEPS, batch_size=64, progress=False)
    ref = train(model, grid, backend="reference", seed=3, config=config).history
    fast = train(model, grid, backend="cpp", seed=3, config=config).history
    assert ref.keys() == fast.keys()
    for name in ("generator", "discriminator", "encoder"):
        if name in ref:
            assert_close(torch.tensor(fast[name]), torch.tensor(ref[name]), torch.float32, f"{model} {name} curve")


def test_curve_comparison_can_fail(grid):
    """The same comparison between two seeds must fail: the check above is not vacuous."""
    config = TrainConfig(steps=CURVE_STEPS, batch_size=64, progress=False)
    a = train("gan", grid, backend="reference", seed=3, config=config).history["generator"]
    b = train("gan", grid, backend="reference", seed=4, config=config).history["generator"]
    with pytest.raises(AssertionError):
        assert_close(torch.tensor(b), torch.tensor(a), torch.float32, "seed 4 vs seed 3")


def test_checkpoints_see_eval_mode_and_training_resumes(grid):
    seen = []

    def checkpoint(t, run):
        seen.append((t, run.nets.training, len(evaluate_seeds(run))))

    config = TrainConfig(steps=5, batch_size=8, progress=False, arch="paper")
    run = train("dali", grid, seeds=[0, 1], backend="reference", config=config, checkpoint_every=2,
                on_checkpoint=checkpoint)
    assert seen == [(2, False, 2), (4, False, 2)]
    assert len(run.history["generator"]) == 5
    plain = train("dali", grid, seeds=[0, 1], backend="reference", config=config)
    assert run.history == plain.history  # evaluating in between changes nothing


def test_same_seed_same_curve(grid):
    config = TrainConfig(steps=20, batch_size=64, progress=False)
    a = train("wgan_gp", grid, backend="reference", seed=1, config=config).history
    b = train("wgan_gp", grid, backend="reference", seed=1, config=config).history
    assert a == b


# ---- the papers' structure ------------------------------------------------------------------------

def test_dali_discriminator_sees_data_and_samples_only(grid, monkeypatch):
    """DALI (001_829e26b63a0bb621.txt, section 3.4, Algorithm 1): rho_q = D(x), rho_p = D(G(z)); the
    discriminator is never called on z or on an (x, z) pair. Every input of D (and of its trunk,
    which the encoder reads) is a data batch or an output of G."""
    seen, made = [], []
    build = trainer.build

    def spying_build(*args, **kwargs):
        nets, latent = build(*args, **kwargs)
        nets["G"].register_forward_hook(lambda m, i, out: made.append(out))
        nets["D"].register_forward_pre_hook(lambda m, i: seen.append(i[0]))
        nets["D"].trunk.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
        return nets, latent

    monkeypatch.setattr(trainer, "build", spying_build)
    train("dali", grid, seeds=[0, 1], backend="reference", config=TrainConfig(steps=3, batch_size=8, progress=False))
    rows = {tuple(r) for r in grid.train.tolist()}
    assert seen and made
    for x in seen:
        from_g = any(x is out for out in made)
        is_data = all(tuple(r) in rows for r in x.reshape(-1, x.shape[-1]).tolist())
        assert x.shape[-1] == grid.dim and (from_g or is_data)
    assert MODELS["dali"].critics == {"D": "data"} and MODELS["dali"].order == ("discriminator", "encoder", "generator")


def test_dali_iteration_is_algorithm_1_in_the_order_of_models_md(grid):
    """Two DALI iterations of the trainer equal the same updates written out by hand with plain
    torch: a D step on L_d, then an E step on L_e = lambda L(z, E(G(z))), then a G step on
    L_g + L_e, each with the others' latest parameters (001_829e26b63a0bb621.txt, Algorithm 1,
    eq. 9, lambda = 1/d; MODELS.md's order)."""
    config = TrainConfig(steps=2, batch_size=16, progress=False, dtype=torch.float64)
    run = train("dali", grid, seed=0, backend="reference", config=config)
    nets, latent = trainer.build(MODELS["dali"], grid, config, [0])
    opts = {k: torch.optim.Adam(nets[k].parameters(), lr=config.lr, betas=config.betas) for k in ("D", "E", "G")}
    gen = torch.Generator().manual_seed(0)
    data = grid.train.double()
    sp = torch.nn.functional.softplus

    def latent_nll(z, fake):
        mean, logvar = nets["E"](nets["D"].trunk(fake)).chunk(2, -1)
        return (0.5 * ((z - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)).mean() / latent

    def update(name, loss):
        opts[name].zero_grad()
        grads = torch.autograd.grad(loss, list(nets[name].parameters()), allow_unused=True)
        for p, g in zip(nets[name].parameters(), grads):
            p.grad = g
        opts[name].step()

    for _ in range(2):
        x = data[torch.randint(0, data.shape[0], (16,), generator=gen)].unsqueeze(0)
        z = torch.randn(16, latent, generator=gen, dtype=torch.float64).unsqueeze(0)
        fake = nets["G"](z)
        update("D", sp(-nets["D"](x)).mean() + sp(nets["D"](fake)).mean())
        update("E", latent_nll(z, fake))
        update("G", sp(-nets["D"](fake)).mean() + latent_nll(z, fake))
    for (name, mine), theirs in zip(nets.state_dict().items(), run.nets.state_dict().values()):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_dali_encoder_loss_does_not_move_the_discriminator(grid):
    """Section 4: the encoder reads D's features, and L_E does not update those shared layers."""
    nets, _ = trainer.build(MODELS["dali"], grid, TrainConfig(), [0])
    owner, groups = trainer.players(MODELS["dali"], nets)
    assert owner["E"] == "encoder" and owner["D"] == "discriminator"
    assert {id(p) for p in groups["encoder"]} == {id(p) for p in nets["E"].parameters()}


def test_asvae_critics_share_no_parameter(grid):
    """AS-VAE (004_87f77bca12a1818b.txt, appendix B: "the same architecture but the parameters are
    not shared"): f and h are separate networks, and AS-VAE-r's loss reaches f only."""
    for model in ("asvae", "asvae_r", "asvae_g"):
        nets, _ = trainer.build(MODELS[model], grid, TrainConfig(), [0])
        f, h = list(nets["f"].parameters()), list(nets["h"].parameters())
        assert f and h and not ({id(p) for p in f} & {id(p) for p in h})
        assert not ({p.data_ptr() for p in f} & {p.data_ptr() for p in h})
    run = train("asvae_r", grid, backend="reference", config=TrainConfig(steps=2, batch_size=8, progress=False))
    untouched = trainer.build(MODELS["asvae_r"], grid, TrainConfig(), [0]).nets
    for name in ("f", "h"):
        moved = any(not torch.equal(a, b) for a, b in zip(run.nets[name].parameters(), untouched[name].parameters()))
        assert moved == (name == "f"), name


def test_vidm_has_five_spectral_norm_critics(grid):
    """VIDM (000_3aaa2260245c9cb7.txt, sections 3-4; MODELS.md's table): c_J, c_Z, c_X, c_A, c_B,
    each a classifier with spectral normalization, and each trained by the discriminator term."""
    spec = MODELS["vidm"]
    assert spec.critics == {"Dj": "pair", "Dz": "latent", "Dx": "data", "Da": "pair", "Db": "pair"}
    run = train("vidm", grid, backend="reference", config=TrainConfig(steps=2, batch_size=8, progress=False))
    untouched = trainer.build(spec, grid, TrainConfig(), [0]).nets
    for name in spec.critics:
        linears = [m for m in run.nets[name].modules() if isinstance(m, networks.Linear)]
        assert linears and all(m.spectral for m in linears)
        assert any(not torch.equal(a, b) for a, b in zip(run.nets[name].parameters(), untouched[name].parameters()))


def test_unrolled_critic_is_adam_replayed():
    """unrolled_logits (Metz et al., 2016, eq. 10-12) equals the critic's logits after K real Adam
    steps of a copy of critic and optimizer on the same batch."""
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    critic = networks.Critic(2, 1, networks.arch("toy"), gens).double()
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.999))
    real, fake = torch.randn(2, 8, 2, dtype=torch.float64), torch.randn(2, 8, 2, dtype=torch.float64)

    def step(c, o):
        loss = 2 * idv.discriminator_loss(c(real).squeeze(-1), c(fake).squeeze(-1), kind="gan")
        o.zero_grad()
        loss.backward()
        o.step()

    step(critic, opt)  # the optimizer has moments and a step count, as in training
    twin = copy.deepcopy(critic)
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.5, 0.999))
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # its moments, not shared tensors
    for _ in range(3):
        step(twin, twin_opt)
    expected = twin(fake).squeeze(-1)
    got = unrolled_logits(critic, opt, real, fake, 3)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert not np.allclose(got.detach().numpy(), critic(fake).squeeze(-1).detach().numpy())
    fake_g = fake.clone().requires_grad_(True)  # differentiable through the replayed steps
    (g,) = torch.autograd.grad(unrolled_logits(critic, opt, real, fake_g, 3).sum(), fake_g)
    (g0,) = torch.autograd.grad(critic(fake_g).sum(), fake_g)
    assert torch.isfinite(g).all() and not torch.allclose(g, g0)


def test_spectral_norm_linear_has_unit_top_singular_value():
    """networks.Linear(spectral=True): after power iterations the effective weight of every seed
    has largest singular value 1 (Miyato et al., 2018)."""
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    layer = networks.Linear(7, 5, gens, spectral=True).double()
    x = torch.randn(3, 4, 7, dtype=torch.float64)
    for _ in range(50):
        layer(x)
    top = torch.linalg.matrix_norm(layer.effective_weight().detach(), ord=2)
    np.testing.assert_allclose(top.numpy(), 1.0, rtol=1e-6)


def test_stacked_batch_norm_is_batch_norm_per_seed():
    x = torch.randn(3, 16, 5, dtype=torch.float64)
    bn = networks.BatchNorm(5, 3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(3, 5))
        bn.bias.copy_(torch.randn(3, 5))
    y = bn(x)
    for s in range(3):
        ref = torch.nn.BatchNorm1d(5).double()
        with torch.no_grad():
            ref.weight.copy_(bn.weight[s])
            ref.bias.copy_(bn.bias[s])
        np.testing.assert_allclose(y[s].detach().numpy(), ref(x[s]).detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.running_var.view(3, 5)[s].numpy(), ref.running_var.numpy(), rtol=1e-12)


# ---- the Table 2 benchmark ---------------------------------------------------------------------------

def _grid25_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "grid25.py"
    spec = importlib.util.spec_from_file_location("grid25_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper_rows_fit_a_budget_and_log_each_row(tmp_path):
    grid25 = _grid25_script()
    log = tmp_path / "rows.jsonl"
    records = grid25.paper_rows(device="cpu", budget_seconds=600, models=("gan", "dali"), seeds=2, backend="reference",
                                log=log, calibration_steps=2, max_steps=3)
    assert [(r["model"], r["seed"], r["steps"]) for r in records] == [("gan", 0, 3), ("gan", 1, 3), ("dali", 0, 3),
                                                                      ("dali", 1, 3)]
    assert len(log.read_text().splitlines()) == 4
    assert grid25.paper_rows(device="cpu", budget_seconds=0, models=("gan",), seeds=1, backend="reference", log=log,
                             calibration_steps=1) == []


def test_paper_rows_in_parallel_processes(tmp_path):
    from benchmarks import grid25

    log = tmp_path / "rows.jsonl"
    records = grid25.paper_rows(device="cpu", budget_seconds=600, models=("gan", "veegan"), seeds=2,
                                backend="reference", log=log, calibration_steps=2, max_steps=3, parallel=True)
    assert sorted((r["model"], r["seed"], r["steps"]) for r in records) == [("gan", 0, 3), ("gan", 1, 3),
                                                                            ("veegan", 0, 3), ("veegan", 1, 3)]
    assert len(log.read_text().splitlines()) == 4


def test_table2_from_a_log_labels_lengths_and_missing_rows():
    grid25 = _grid25_script()
    rec = {"model": "dali", "steps": 6000, "wall_seconds": 120.0, "device": "cpu", "threads": 1,
           "metrics": {"modes": 24, "high_quality_percent": 70.0}}
    text = grid25.table([rec, {**rec, "metrics": {"modes": 22, "high_quality_percent": 60.0}},
                         {**rec, "model": "gan", "steps": 31240}])
    assert "| dali | 23.00 ± 1.00 | 65.00 ± 5.00 | 25 / 81.1 | 2 | 6,000 |" in text
    assert "| gan |" in text and "31,240" in text
    assert "Not run yet: ali, unrolled_gan, vaegan, veegan, sngan, dali_f." in text


# ---- command line --------------------------------------------------------------------------------

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
    assert (out / "reconstructions.png").exists() == bool(MODELS[model].encoder)
    if data_name == "grid25":
        assert {"modes", "high_quality_percent", "reconstruction_mse"} <= set(record["metrics"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"] == model


@pytest.mark.parametrize("model", ["dali", "unrolled_gan", "vidm"])
def test_new_models_train_on_a_new_mixture_file_through_the_cli(model, tmp_path):
    """`implicitdiv train MODEL --data FILE.npy` on a mixture of Gaussians it has never seen (three
    components in 3D), with no code change."""
    from implicitdiv import cli

    gen = np.random.default_rng(5)
    means = np.array([[0.0, 0.0, 3.0], [2.0, -1.0, 0.0], [-2.0, 1.0, -1.0]])
    rows = means[gen.integers(0, 3, 600)] + 0.1 * gen.standard_normal((600, 3))
    path = tmp_path / "mixture3d.npy"
    np.save(path, rows)
    out = tmp_path / model
    assert cli.main(["train", model, "--data", str(path), "--steps", "20", "--seed", "1", "--out", str(out)]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["data"] == "mixture3d" and math.isfinite(record["metrics"]["mmd2"])
    assert np.load(out / "samples.npy").shape == (2500, 3)


def test_train_command_rejects_bad_arguments(tmp_path):
    bad_model = argparse.Namespace(model="nope", data="grid25", steps=1, backend=None, seed=0, out=str(tmp_path))
    with pytest.raises(ValueError, match="model must be one of"):
        run_from_cli(bad_model)
    bad_steps = argparse.Namespace(model="gan", data="grid25", steps=-3, backend=None, seed=0, out=str(tmp_path))
    with pytest.raises(ValueError, match="steps"):
        run_from_cli(bad_steps)
    with pytest.raises(ValueError, match="backend"):
        train("gan", load_data("ring8"), backend="fast", config=TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="seeds"):
        train("gan", load_data("ring8"), seeds=[1, 1], config=TrainConfig(steps=1, progress=False))


def test_implicitdiv_train_subcommand(tmp_path, capsys):
    from implicitdiv import cli

    out = tmp_path / "cli"
    assert cli.main(["train", "dali", "--data", "ring8", "--steps", "5", "--seed", "1", "--out", str(out)]) == 0
    assert {"metrics.json", "samples.npy", "samples.png", "reconstructions.png"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "metrics.json").read_text())["data"] == "ring8"


@pytest.mark.parametrize("field,value,match", [("steps", -1, "steps"), ("batch_size", 0, "batch_size"),
                                               ("lr", float("nan"), "lr"), ("arch", "huge", "arch"),
                                               ("decay_every", 0, "decay_every")])
def test_train_rejects_a_bad_config(field, value, match, grid):
    config = TrainConfig(progress=False, **{field: value})
    with pytest.raises(ValueError, match=match):
        train("gan", grid, config=config)


def test_evaluate_takes_one_seed(grid):
    run = train("gan", grid, seeds=[0, 1], backend="reference", config=TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="evaluate_seeds"):
        evaluate(run)
    assert len(evaluate_seeds(run)) == 2


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

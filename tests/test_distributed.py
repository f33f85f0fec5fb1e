"""implicitdiv.distributed on 2 and 4 gloo processes on the CPU against the single-process
estimators on the concatenated shards: values, gradients (each rank's slice), p-values, the bits
being identical on every rank, the bytes exchanged, and every rank raising (not hanging) on bad
or mismatched input.

Each test spawns its ranks once (torch.multiprocessing, 127.0.0.1 only) and runs its cases in
lockstep on every rank; a rank collects its failures instead of raising mid-way, so one failing
comparison cannot strand the other ranks in a collective.
"""
from __future__ import annotations

import datetime
import socket
import time
import traceback
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import implicitdiv
import implicitdiv.distributed as idd

from .equivalence import assert_close

SPAWN_DEADLINE_S = 170
GROUP_TIMEOUT = datetime.timedelta(seconds=60)


# ---- spawning ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, scenarios: tuple[str, ...]) -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # "auto" falling back to the reference says so once
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=GROUP_TIMEOUT)
    failures: list[str] = []
    try:
        for scenario in scenarios:
            SCENARIOS[scenario](rank, world, failures)
    finally:
        dist.destroy_process_group()
    if failures:
        raise AssertionError(f"rank {rank}: {len(failures)} failure(s)\n" + "\n".join(failures))


def _spawn(world: int, *scenarios: str) -> None:
    ctx = mp.start_processes(_worker, args=(world, _free_port(), scenarios), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            pytest.fail(f"{scenarios} on {world} ranks did not finish in {SPAWN_DEADLINE_S} s (a hang)")


def _case(failures: list[str], label: str, fn) -> None:
    """Run one case; every collective in ``fn`` must come before its first assert."""
    try:
        fn()
    except Exception:  # noqa: BLE001 -- recorded, and the rank goes on in lockstep with the others
        failures.append(f"[{label}]\n{traceback.format_exc()}")


# ---- shards -----------------------------------------------------------------------------------

def _cuts(total: int, world: int, rng, empty_rank: int | None = None) -> list[int]:
    """Uneven shard boundaries 0 = c_0 <= ... <= c_W = total; ``empty_rank`` gets no rows."""
    sizes = rng.multinomial(total, rng.dirichlet(np.ones(world)))
    if empty_rank is not None:
        sizes[(empty_rank + 1) % world] += sizes[empty_rank]
        sizes[empty_rank] = 0
    return [0, *np.cumsum(sizes).tolist()]


def _shard(t: torch.Tensor, cuts, rank: int, dim: int) -> torch.Tensor:
    return t.narrow(dim, cuts[rank], cuts[rank + 1] - cuts[rank])


def _gathered_equal(t: torch.Tensor) -> bool:
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.detach().contiguous())
    return all(torch.equal(torch.nan_to_num(p), torch.nan_to_num(parts[0])) and
               torch.equal(torch.isnan(p), torch.isnan(parts[0])) for p in parts)


def _compare(rank, world, single, sharded, values, split, kwargs, dtype, exchange, scale, seed, backend="auto"):
    """sharded(**this rank's shards) against single(**everything) in float64: the value, then the
    gradient of <out, u> for one upstream u, sliced to this rank's rows.

    values: name -> float64 array; split: name -> (which sample set, the rows dim)."""
    rng = np.random.default_rng(seed)
    cuts = {"x": _cuts(values["x"].shape[-2], world, rng, empty_rank=seed % world if seed % 3 == 0 else None),
            "y": _cuts(values["y"].shape[-2], world, rng)}
    full = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in values.items()}
    expected = single(**full, **kwargs, backend="reference")
    u = torch.tensor(rng.standard_normal(tuple(expected.shape)) + 0.5)
    expected_grads = torch.autograd.grad(expected, list(full.values()), u)

    mine = {n: _shard(full[n].detach(), cuts[split[n][0]], rank, split[n][1]).to(dtype).requires_grad_()
            for n in full}
    out = sharded(**mine, **kwargs, backend=backend, exchange=exchange)
    grads = torch.autograd.grad(out, list(mine.values()), u.to(dtype))
    same_everywhere = _gathered_equal(out)  # collectives first: a failed assert must not skip one
    assert out.dtype == dtype
    assert_close(out, expected, dtype, "value", scale)
    for (n, g), e in zip(zip(mine, grads), expected_grads):
        want = _shard(e, cuts[split[n][0]], rank, split[n][1])
        assert_close(g, want, dtype, f"grad:{n}", float(e.abs().max()))
    assert same_everywhere, "the value differs across ranks"


# ---- scenarios --------------------------------------------------------------------------------

DTYPES = (torch.float64, torch.float32)
SAMPLE_SPLIT = {"x": ("x", -2), "y": ("y", -2)}


def _points(rng, shape, shift=0.0):
    return rng.standard_normal(shape) / np.sqrt(shape[-1]) + shift


def _kmax(kernel, bandwidth, d):
    nb = 1 if kernel in ("energy", "linear") else len(np.atleast_1d(bandwidth))
    return {"energy": 3.0 * (1 + 0.3 * np.sqrt(d)), "linear": 3.0 * d}.get(kernel, nb)


def values_and_gradients(rank, world, failures):
    """mmd2 (biased, unbiased) and kernel_sum (weights, P columns, batches, y is x) on uneven shards."""
    case = 0
    for exchange in idd.EXCHANGES:
        for dtype in DTYPES:
            for kernel, estimator in (("rbf", "biased"), ("imq", "unbiased"), ("laplacian", "unbiased"),
                                      ("energy", "biased"), ("linear", "unbiased")):
                case += 1
                rng = np.random.default_rng(case)
                n, m, d = int(rng.integers(8, 40)), int(rng.integers(8, 40)), int(rng.integers(1, 6))
                batch = (2,) if case % 4 == 0 else ()
                bw = (0.5, 1.0, 3.0) if case % 2 else 1.5
                vals = {"x": _points(rng, batch + (n, d)), "y": _points(rng, batch + (m, d), 0.3)}
                kw = {"kernel": kernel, "bandwidth": bw, "estimator": estimator}
                backend = "reference" if case % 2 else "auto"  # auto: the fused engine where one is built
                _case(failures, f"mmd2 {kw} {exchange} {dtype} {backend} n={n} m={m} d={d} batch={batch}",
                      lambda: _compare(rank, world, implicitdiv.mmd2, idd.mmd2, vals, SAMPLE_SPLIT, kw, dtype,
                                       exchange, 4 * _kmax(kernel, bw, d), case, backend))
            for kernel, p in (("rbf", None), ("laplacian", 3), ("imq", 1), ("energy", None), ("linear", 2)):
                case += 1
                rng = np.random.default_rng(case)
                n, m, d = int(rng.integers(5, 40)), int(rng.integers(5, 40)), int(rng.integers(1, 6))
                batch = (3,) if case % 3 == 0 else ()
                cols = () if p is None else (p,)
                vals = {"x": _points(rng, batch + (n, d)), "y": _points(rng, batch + (m, d), 0.3),
                        "x_weights": rng.standard_normal(batch + (n,) + cols),
                        "y_weights": rng.standard_normal(batch + (m,) + cols)}
                rows = len(batch)
                split = {**SAMPLE_SPLIT, "x_weights": ("x", rows), "y_weights": ("y", rows)}
                kw = {"kernel": kernel, "bandwidth": (0.7, 2.0)}
                wa, wb = np.abs(vals["x_weights"]).max(), np.abs(vals["y_weights"]).max()
                scale = n * m * _kmax(kernel, kw["bandwidth"], d) * wa * wb
                _case(failures, f"kernel_sum {kw} P={p} {exchange} {dtype} n={n} m={m} d={d} batch={batch}",
                      lambda: _compare(rank, world, implicitdiv.kernel_sum, idd.kernel_sum, vals, split, kw, dtype,
                                       exchange, scale, case))
            _case(failures, f"kernel_sum y is x {exchange} {dtype}", lambda: _symmetric_call(rank, world, dtype, exchange))
    if world > 2:
        _case(failures, "a subgroup of the last ranks", lambda: _subgroup_call(rank, world))


def _subgroup_call(rank, world):
    """group = ranks 1..W-1: group ranks differ from global ones, and rank 0 stays out."""
    members = list(range(1, world))
    group = dist.new_group(members)  # every rank takes part in creating it
    if rank not in members:
        return
    rng = np.random.default_rng(3)
    x_full, y_full = torch.tensor(_points(rng, (19, 3))), torch.tensor(_points(rng, (14, 3), 0.5))
    expected = implicitdiv.mmd2(x_full, y_full, estimator="unbiased", backend="reference")
    xc, yc = _cuts(19, len(members), rng), _cuts(14, len(members), rng)
    mine = members.index(rank)
    for exchange in idd.EXCHANGES:
        x = _shard(x_full, xc, mine, 0).clone().requires_grad_()
        out = idd.mmd2(x, _shard(y_full, yc, mine, 0), estimator="unbiased", group=group, exchange=exchange)
        out.backward()
        x_ref = x_full.clone().requires_grad_()
        implicitdiv.mmd2(x_ref, y_full, estimator="unbiased", backend="reference").backward()
        assert_close(out, expected, torch.float64, f"value on the subgroup ({exchange})")
        assert_close(x.grad, _shard(x_ref.grad, xc, mine, 0), torch.float64, f"grad:x on the subgroup ({exchange})",
                     float(x_ref.grad.abs().max()))


def _symmetric_call(rank, world, dtype, exchange):
    """kernel_sum(x, x, x_weights=a, y_weights=a): the diagonal block takes the symmetric op."""
    rng = np.random.default_rng(99)
    x_full = torch.tensor(_points(rng, (23, 4)), requires_grad=True)
    a_full = torch.tensor(rng.standard_normal((23, 2)), requires_grad=True)
    expected = implicitdiv.kernel_sum(x_full, x_full, x_weights=a_full, y_weights=a_full, backend="reference")
    gx, ga = torch.autograd.grad(expected.sum(), (x_full, a_full))
    cuts = _cuts(23, world, rng)
    x = _shard(x_full.detach(), cuts, rank, 0).to(dtype).requires_grad_()
    a = _shard(a_full.detach(), cuts, rank, 0).to(dtype).requires_grad_()
    out = idd.kernel_sum(x, x, x_weights=a, y_weights=a, exchange=exchange)
    out.sum().backward()
    scale = 23 * 23 * float(a_full.abs().max()) ** 2
    assert_close(out, expected, dtype, "value", scale)
    assert_close(x.grad, _shard(gx, cuts, rank, 0), dtype, "grad:x", float(gx.abs().max()))
    assert_close(a.grad, _shard(ga, cuts, rank, 0), dtype, "grad:x_weights", float(ga.abs().max()))


def permutation_test(rank, world, failures):
    """The same statistic and p-value as one process with the same seed; seed=None agrees too."""
    for exchange in idd.EXCHANGES:
        for kernel, bandwidth, shift in (("rbf", "median", 0.0), ("laplacian", (0.5, 2.0), 0.4), ("imq", "median", 0.8)):
            def run(kernel=kernel, bandwidth=bandwidth, shift=shift):
                rng = np.random.default_rng(7)
                x_full = torch.tensor(_points(rng, (31, 3)))
                y_full = torch.tensor(_points(rng, (26, 3), shift))
                stat1, p1 = implicitdiv.mmd_test(x_full, y_full, kernel=kernel, bandwidth=bandwidth, permutations=300,
                                                 seed=11, backend="reference")
                xc, yc = _cuts(31, world, rng), _cuts(26, world, rng, empty_rank=0)
                stat, p = idd.mmd_test(_shard(x_full, xc, rank, 0), _shard(y_full, yc, rank, 0), kernel=kernel,
                                       bandwidth=bandwidth, permutations=300, seed=11, exchange=exchange)
                same_everywhere = _gathered_equal(p) & _gathered_equal(stat)
                assert_close(stat, stat1, torch.float64, "statistic")
                assert float(p) == float(p1), f"p-value {float(p)} != single-process {float(p1)}"
                assert same_everywhere, "the test's result differs across ranks"
            _case(failures, f"mmd_test {kernel} {bandwidth} {exchange}", run)

    def unseeded():
        torch.manual_seed(1000 + rank)  # every rank's own generator differs; rank 0's seed must win
        x = torch.randn(5 + rank, 2, dtype=torch.float64)
        stat, p = idd.mmd_test(x, x + 1.0, permutations=50)
        same_everywhere = _gathered_equal(p) & _gathered_equal(stat)
        assert 0 < float(p) <= 1
        assert same_everywhere, "seed=None gave different tests on different ranks"
    _case(failures, "mmd_test seed=None", unseeded)


def traffic_and_determinism(rank, world, failures):
    """The exchanges send what their docstrings say, and a call repeated gives the same bits."""
    rng = np.random.default_rng(5)
    n_rows = [3 + 2 * r for r in range(world)]
    m_rows = [7 - r for r in range(world)]
    d = 4
    x = torch.tensor(_points(rng, (n_rows[rank], d)))
    y = torch.tensor(_points(rng, (m_rows[rank], d)))
    packed = [(n_rows[r] + m_rows[r]) * d * 8 for r in range(world)]  # float64 bytes of each rank's shard

    def ring():
        idd.TRAFFIC.reset()
        with torch.no_grad():
            first = idd.mmd2(x, y, exchange="ring")
            sent = idd.TRAFFIC.bytes_sent
            again = idd.mmd2(x, y, exchange="ring")
        # forward: W - 1 shifts, each of the shard held then: own, rank - 1, ..., rank - W + 2
        want = sum(packed[(rank - t) % world] for t in range(world - 1))
        assert sent == want, f"ring sent {sent} bytes, expected {want}"
        assert torch.equal(first, again), "the same call gave different bits"

    def allgather():
        idd.TRAFFIC.reset()
        with torch.no_grad():
            idd.mmd2(x, y, exchange="allgather")
        want = (world - 1) * max(packed)
        assert idd.TRAFFIC.bytes_sent == want, f"allgather sent {idd.TRAFFIC.bytes_sent} bytes, expected {want}"

    def backward_volume():
        xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
        out = idd.mmd2(xr, yr, exchange="ring")
        idd.TRAFFIC.reset()
        out.backward()
        # backward: the shards again (W - 1 shifts) and the gradients (W shifts, each the size of its shard)
        want = sum(packed[(rank - t) % world] for t in range(world - 1)) + sum(packed)
        assert idd.TRAFFIC.bytes_sent == want, f"ring backward sent {idd.TRAFFIC.bytes_sent} bytes, expected {want}"

    def backward_twice():
        """The first backward uses the kept block graphs, a second (retain_graph) recomputes them."""
        results = {}
        for exchange in idd.EXCHANGES:
            xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
            out = idd.mmd2(xr, yr, estimator="unbiased", exchange=exchange)
            first = torch.autograd.grad(out, (xr, yr), retain_graph=True)
            results[exchange] = (first, torch.autograd.grad(out, (xr, yr)))
        for exchange, (first, second) in results.items():
            assert all(torch.equal(a, b) for a, b in zip(first, second)), f"{exchange}: a second backward differs"

    def empty_rank():
        """Rank 0 holds no samples at all: it still takes part and gets the value and (0, d) gradients."""
        rng = np.random.default_rng(8)
        x_full, y_full = torch.tensor(_points(rng, (4 * world, 3))), torch.tensor(_points(rng, (3 * world, 3), 0.4))
        xc = [0, 0] + [4 * r for r in range(2, world + 1)]
        yc = [0, 0] + [3 * r for r in range(2, world + 1)]
        x_ref = x_full.clone().requires_grad_()
        expected = implicitdiv.mmd2(x_ref, y_full, estimator="unbiased", backend="reference")
        expected.backward()
        outs = {}
        for exchange in idd.EXCHANGES:
            x = _shard(x_full, xc, rank, 0).clone().requires_grad_()
            out = idd.mmd2(x, _shard(y_full, yc, rank, 0), estimator="unbiased", exchange=exchange)
            out.backward()
            outs[exchange] = (out, x.grad)
        for exchange, (out, grad) in outs.items():
            assert_close(out, expected, torch.float64, f"value with an empty rank ({exchange})")
            assert_close(grad, _shard(x_ref.grad, xc, rank, 0), torch.float64, f"grad:x with an empty rank ({exchange})",
                         float(x_ref.grad.abs().max()))

    _case(failures, "ring traffic and determinism", ring)
    _case(failures, "a rank without samples", empty_rank)
    _case(failures, "backward twice", backward_twice)
    _case(failures, "allgather traffic", allgather)
    _case(failures, "ring backward traffic", backward_volume)


def _expect_everywhere(exc_type, fragment, call):
    with pytest.raises(exc_type) as info:
        call()
    assert fragment in str(info.value), f"message {str(info.value)!r} lacks {fragment!r}"


def failures_raise_everywhere(rank, world, failures):
    """Bad or mismatched input on one rank makes every rank raise a clear error, never hang."""
    odd = 1  # the rank that misbehaves
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(4 + rank, 2, dtype=torch.float64, generator=gen)
    y = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.5  # the same everywhere

    def d_mismatch():
        xi = torch.randn(4, 3, dtype=torch.float64) if rank == odd else x
        yi = torch.randn(3, 3, dtype=torch.float64) if rank == odd else y
        _expect_everywhere(ValueError, "x: feature dimension d differs across ranks", lambda: idd.mmd2(xi, yi, timeout=20))

    def dtype_mismatch():
        xi, yi = (x.float(), y.float()) if rank == odd else (x, y)
        _expect_everywhere(TypeError, "x: dtype differs across ranks", lambda: idd.kernel_sum(xi, yi, timeout=20))

    def local_rejection():
        yi = torch.randn(3, 5, dtype=torch.float64) if rank == odd else y
        fragment = "trailing dims differ" if rank == odd else f"rank {odd} rejected its input: trailing dims differ"
        _expect_everywhere(ValueError, fragment, lambda: idd.mmd2(x, yi, timeout=20))

    def argument_mismatch():
        kernel = "imq" if rank == odd else "rbf"
        _expect_everywhere(ValueError, "differs across ranks", lambda: idd.mmd2(x, y, kernel=kernel, timeout=20))

    def grad_mismatch():
        xi = x.clone().requires_grad_(rank == odd)
        _expect_everywhere(ValueError, "x: needs a gradient", lambda: idd.mmd2(xi, y, timeout=20))

    def bad_everywhere():
        _expect_everywhere(ValueError, "exchange must be one of", lambda: idd.mmd2(x, y, exchange="bogus", timeout=20))
        _expect_everywhere(ValueError, "estimator='linear' is not distributed",
                           lambda: idd.mmd2(x, y, estimator="linear", timeout=20))

    def too_few_samples():
        xi = x[:1] if rank == 0 else x[:0]
        _expect_everywhere(ValueError, "x has 1 samples over all ranks; at least 2 needed",
                           lambda: idd.mmd2(xi, y, estimator="unbiased", timeout=20))

    def still_usable():
        xs = [torch.randn(4 + r, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(r)) for r in range(world)]
        out = idd.mmd2(x, y, timeout=20)
        assert torch.equal(xs[rank], x)
        expected = implicitdiv.mmd2(torch.cat(xs), y.repeat(world, 1), backend="reference")
        assert_close(out, expected, torch.float64, "value after the errors")

    def nonfinite_anywhere():
        results = {}
        for bad in (float("nan"), float("inf")):
            xi = x.clone()
            if rank == odd:
                xi[0, 0] = bad
            results[f"mmd2 with {bad} in x"] = idd.mmd2(xi, y, timeout=20)
            results[f"kernel_sum with {bad} in y"] = idd.kernel_sum(y, xi, timeout=20)
            results[f"mmd_test's p-value with {bad} in x"] = idd.mmd_test(xi, y, permutations=10, seed=0, timeout=20)[1]
        for what, value in results.items():
            assert torch.isnan(value), f"{what} on rank {odd}: {float(value)} on rank {rank}, not NaN"

    def no_double_backward():
        xi = x.clone().requires_grad_()
        out = idd.mmd2(xi, y, timeout=20)
        _expect_everywhere(RuntimeError, "double backward", lambda: torch.autograd.grad(out, xi, create_graph=True))

    for name, fn in (("d mismatch", d_mismatch), ("dtype mismatch", dtype_mismatch), ("local rejection", local_rejection),
                     ("argument mismatch", argument_mismatch), ("grad mismatch", grad_mismatch),
                     ("bad everywhere", bad_everywhere), ("too few samples", too_few_samples),
                     ("still usable", still_usable), ("nonfinite", nonfinite_anywhere),
                     ("double backward", no_double_backward)):
        _case(failures, name, fn)

    def absent_rank():
        """A rank that never calls: the others raise TimeoutError after ``timeout``, not hang."""
        if rank != odd:
            start = time.monotonic()
            _expect_everywhere(TimeoutError, "did not make the same call", lambda: idd.mmd2(x, y, timeout=2))
            assert time.monotonic() - start < 10, "the timeout did not bound the wait"
    _case(failures, "absent rank", absent_rank)


SCENARIOS = {f.__name__: f for f in (values_and_gradients, permutation_test, traffic_and_determinism,
                                      failures_raise_everywhere)}


# ---- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("world", [2, 4])
def test_matches_one_process_on_the_concatenation(world):
    """Values, gradients and p-values on uneven shards; the bytes each exchange sends."""
    _spawn(world, "values_and_gradients", "permutation_test", "traffic_and_determinism")


def test_bad_input_raises_on_every_rank():
    _spawn(4, "failures_raise_everywhere")


def test_needs_an_initialized_process_group():
    x = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        idd.mmd2(x, x)

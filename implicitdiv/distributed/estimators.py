"""The distributed estimators: kernel_sum, mmd2 and mmd_test over samples sharded across ranks (the
package docstring says how to run them)."""
from __future__ import annotations

import torch

from .. import _validate as check
from ..backend import resolve
from ..kernel_sums import KERNELS, canonical
from ..mmd import ESTIMATORS, median_bandwidth
from ..statistics import median_as_bandwidths, mmd2_weights, p_value, permutation_weights
from .agreement import Field, config_field, grad_field, tensor_fields, total_rows, validated
from .exchange import EXCHANGES
from .group import TRAFFIC, Group, gather_in_rank_order
from .shards import Columns
from .sharded_sum import constant_weights, pair, run, sharded_sum, sym

DEFAULT_TIMEOUT_S = 60.0

X_ROWS, Y_ROWS = "x: rows", "y: rows"


def kernel_sum(x, y, *, kernel="rbf", bandwidth=1.0, x_weights=None, y_weights=None, backend=None,
               group=None, exchange="ring", timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """sum_ij a_i k(x_i, y_j) b_j over all pairs of the samples sharded across the ranks of ``group``.

    x = [x_0; ...; x_{W-1}] and y = [y_0; ...] are the concatenations of the ranks' shards, a and b
    of their weights; rank r computes its block rows sum_{i in x_r} a_i sum_j k(x_i, y_j) b_j with the
    local backend while the y shards stream past, and the sum over ranks goes to every rank.

    Args as implicitdiv.kernel_sum, for this rank's shard (n_r = 0 rows allowed), plus:
        group: the process group (None: the world).
        exchange: "ring" (point-to-point, one remote shard at a time) or "allgather".
        timeout: seconds to wait for the other ranks' metadata before raising TimeoutError.
    Returns the global sum, identical on every rank; backward gives this rank's shards' gradients.
    """
    grp = Group.of(group, timeout)
    symmetric = y is x and y_weights is x_weights

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        c = canonical(x, y, x_weights, y_weights, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0)
        name = resolve(backend, "kernel_sum", x.device)
        fields = {**config_field(kernel=kernel, bandwidth=bandwidths, exchange=exchange),
                  **tensor_fields(x, "x"), **tensor_fields(y, "y"),
                  Field("y is x and y_weights is x_weights (a symmetric call)"): int(symmetric),
                  Field("x_weights: given (None on some ranks)"): int(x_weights is not None),
                  Field("y_weights: given (None on some ranks)"): int(y_weights is not None),
                  Field("x_weights: weight columns P"): c.x_columns,
                  Field("y_weights: weight columns P"): c.y_columns,
                  **grad_field("x", x), **grad_field("y", y),
                  **grad_field("x_weights", x_weights), **grad_field("y_weights", y_weights)}
        return fields, (bandwidths, name, c)

    values, (bandwidths, name, c) = validated(grp, "kernel_sum", x, local)
    total_rows(values, "x", 1)
    total_rows(values, "y", 1)
    xb, yb, a, b = c.x, c.y, c.a, c.b
    bsz, d, p = xb.shape[0], xb.shape[-1], a.shape[-1]

    def block(rows, cols, owner):
        (xr, ar), (yc, bc) = rows, cols
        if symmetric and owner == grp.rank:
            return sym(xr, ar, kernel, bandwidths, False, name)
        return pair(xr, yc, ar, bc, kernel, bandwidths, name)

    shapes = [[(bsz, v[Y_ROWS], d), (bsz, v[Y_ROWS], p)] for v in values]
    out = run(sharded_sum(grp, exchange, shapes, xb, 2, block), (xb, a), (xb, a) if symmetric else (yb, b))
    return c.shape_result(out)


def mmd2(x, y, *, kernel="rbf", bandwidth=1.0, estimator="biased", backend=None, group=None, exchange="ring",
         timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """Squared MMD between the samples sharded across the ranks of ``group``:

    biased:   1/N^2 sum_ij k(x_i,x_j) + 1/M^2 sum_ij k(y_i,y_j) - 2/(NM) sum_ij k(x_i,y_j)
    unbiased: the same with the i = j terms of the first two sums left out, over N(N-1) and M(M-1)

    with N = sum_r n_r and M = sum_r m_r the global sample counts; rank r computes the rows of x_r and
    y_r against every shard. The linear-time estimate pairs neighbouring rows and is O(N) already:
    compute it on each rank's shard instead. Arguments as implicitdiv.mmd2 plus group, exchange and
    timeout as in kernel_sum. Returns the global value, identical on every rank (a scalar, or (B,)).
    """
    grp = Group.of(group, timeout)

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        check.choice(estimator, "estimator", ESTIMATORS)
        if estimator == "linear":
            raise ValueError("estimator='linear' is not distributed: it is O(N) per shard, call implicitdiv.mmd2 "
                             "on each rank's shard; use 'biased' or 'unbiased' here")
        check.matching_samples(x, y, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0)
        name = resolve(backend, "mmd2", x.device)
        fields = {**config_field(kernel=kernel, bandwidth=bandwidths, estimator=estimator, exchange=exchange),
                  **tensor_fields(x, "x"), **tensor_fields(y, "y"), **grad_field("x", x), **grad_field("y", y)}
        return fields, (bandwidths, name)

    values, (bandwidths, name) = validated(grp, "mmd2", x, local)
    unbiased = estimator == "unbiased"
    n = total_rows(values, "x", 2 if unbiased else 1)
    m = total_rows(values, "y", 2 if unbiased else 1)
    batched = x.dim() == 3
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    w = mmd2_weights(n, m, unbiased)
    args = (kernel, bandwidths)

    def block(rows, cols, owner):
        (xr, yr), (xc, yc) = rows, cols
        if owner == grp.rank:
            kxx = sym(xr, constant_weights(xr, w.xx), *args, unbiased, name)
            kyy = sym(yr, constant_weights(yr, w.yy), *args, unbiased, name)
        else:
            kxx = pair(xr, xc, constant_weights(xr, w.xx), constant_weights(xc, w.xx), *args, name)
            kyy = pair(yr, yc, constant_weights(yr, w.yy), constant_weights(yc, w.yy), *args, name)
        kxy = pair(xr, yc, constant_weights(xr, w.cross_x), constant_weights(yc, w.cross_y), *args, name)
        return kxx + kyy + kxy

    bsz, d = xb.shape[0], xb.shape[-1]
    shapes = [[(bsz, v[X_ROWS], d), (bsz, v[Y_ROWS], d)] for v in values]
    out = run(sharded_sum(grp, exchange, shapes, xb, 2, block), (xb, yb), (xb, yb))[..., 0]
    return out if batched else out[0]


def mmd_test(x, y, *, kernel="rbf", bandwidth="median", permutations=1000, seed=None, backend=None, group=None,
             exchange="ring", timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """Permutation two-sample test of H0: P = Q with the biased MMD^2, over samples sharded across ranks.

    The pooled sample z = [x_0; ...; x_{W-1}; y_0; ...; y_{W-1}] and the weights
    W = implicitdiv.statistics.permutation_weights(N, M, permutations, seed) are those of the
    single-process test on the concatenations; every statistic diag(W^T K W) is summed over the
    ranks' block rows of z. p = (1 + #{null >= observed}) / (1 + permutations), the single-process
    p-value for the same seed (seed None: rank 0 draws one for all).

    x: (n_r, d), y: (m_r, d) this rank's shards; other arguments as implicitdiv.mmd_test, plus group,
    exchange and timeout as in kernel_sum. Returns (statistic, p_value), identical on every rank.
    """
    grp = Group.of(group, timeout)

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        check.positive_int(permutations, "permutations")
        if seed is not None:
            check.positive_int(seed, "seed", minimum=0)
        check.matching_samples(x, y, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0, median_ok=True)
        bandwidths = "median" if bandwidths is None else bandwidths
        if x.dim() != 2:
            raise ValueError(f"mmd_test takes (N, d) samples, got x of shape {tuple(x.shape)}")
        name = resolve(backend, "mmd_test", x.device)
        drawn = torch.seed() % (2**63) if seed is None else seed
        fields = {**config_field(kernel=kernel, bandwidth=bandwidths, permutations=permutations, seed=seed,
                                  exchange=exchange),
                  **tensor_fields(x, "x"), **tensor_fields(y, "y"), Field("seed", agree=False): drawn}
        return fields, (bandwidths, name)

    values, (bandwidths, name) = validated(grp, "mmd_test", x, local)
    n, m = total_rows(values, "x", 1), total_rows(values, "y", 1)
    x, y = x.detach(), y.detach()
    d = x.shape[-1]
    with torch.no_grad():
        if bandwidths == "median":
            bandwidths = median_bandwidths(grp, x, y, values)
        w = permutation_weights(n, m, permutations, values[0]["seed"], x.dtype, x.device)
        x_start = [sum(v[X_ROWS] for v in values[:r]) for r in range(grp.world)]
        y_start = [n + sum(v[Y_ROWS] for v in values[:r]) for r in range(grp.world)]
        per_rank = [w[torch.cat([torch.arange(x_start[r], x_start[r] + v[X_ROWS]),
                                torch.arange(y_start[r], y_start[r] + v[Y_ROWS])]).to(w.device)].unsqueeze(0)
                   for r, v in enumerate(values)]

        def block(rows, cols, owner):
            (zr,), (zc,) = rows, cols
            if owner == grp.rank:
                return sym(zr, per_rank[owner], kernel, bandwidths, False, name)
            return pair(zr, zc, per_rank[grp.rank], per_rank[owner], kernel, bandwidths, name)

        z = torch.cat([x, y]).unsqueeze(0)
        pooled = sharded_sum(grp, exchange, [[(1, v[X_ROWS] + v[Y_ROWS], d)] for v in values], z, 1, block)
        stats = run(pooled, (z,), (z,))[0]
        return stats[0], p_value(stats)


def median_bandwidths(grp: Group, x, y, values) -> tuple[float]:
    """implicitdiv.mmd_test's bandwidth="median" on the concatenated shards (gathered once)."""
    d = x.shape[-1]
    pooled = Columns([[(v[X_ROWS], d), (v[Y_ROWS], d)] for v in values], x.dtype, x.device)
    gathered = gather_in_rank_order(grp, pooled.pack((x, y), grp.rank, pooled.width))
    TRAFFIC.add((grp.world - 1) * pooled.width * pooled.itemsize, grp.world - 1)
    shards = [pooled.unpack(g, r) for r, g in enumerate(gathered)]
    return median_as_bandwidths(median_bandwidth(torch.cat([s[0] for s in shards]), torch.cat([s[1] for s in shards])))

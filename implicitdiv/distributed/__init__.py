"""Distributed estimators: kernel sums, MMD^2 and the permutation test over samples sharded across
the ranks of a torch.distributed process group.

Running on several processes (torchrun)
---------------------------------------
When one process's samples or memory are not enough, shard the samples across processes. Each rank
passes its own shard of x and of y (shards may differ in size, and a rank may hold none); every
rank gets the same number, equal to the single-process estimator on the concatenation of the
shards in rank order, and backward gives each rank the gradient for its own shard::

    # train.py -- run with: torchrun --nproc_per_node=4 train.py
    import torch, torch.distributed as dist
    import implicitdiv.distributed as idd

    dist.init_process_group("gloo")          # "nccl" for CUDA tensors, one GPU per rank
    x = my_generator(batch_per_rank)          # this rank's shard, (n_r, d)
    y = next(my_data)                         # this rank's shard, (m_r, d)
    loss = idd.mmd2(x, y, kernel="rbf", bandwidth=(0.5, 1.0, 2.0), estimator="unbiased")
    loss.backward()                           # every rank must call backward: it exchanges gradients
    stat, p = idd.mmd_test(x.detach(), y.detach(), permutations=1000, seed=0)
    dist.destroy_process_group()

Several machines: ``torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d
--rdzv-endpoint=HOST:29400 train.py`` on each. Functions: ``kernel_sum``, ``mmd2`` (biased and
unbiased) and ``mmd_test``, with the arguments of the single-process ones plus ``group`` (default:
the world), ``exchange`` and ``timeout``.

- Every rank must call the same function with the same kernel, bandwidth, estimator, dtype, feature
  dimension and gradient needs; a small all-gather of this metadata runs first, bounded by
  ``timeout`` seconds, so a mismatch (or a rank rejecting its input) raises a clear error on every
  rank instead of hanging. If a rank never calls, the others raise ``TimeoutError``; the group then
  holds a pending collective and should be destroyed.
- ``exchange="ring"`` (default) passes the shards around a ring of point-to-point sends and holds
  at most two remote shards at a time; ``exchange="allgather"`` gathers every shard at once. Each
  rank receives the other ranks' shards once in the forward pass; the backward pass sends the
  column-side gradients back to their owners (ring: the shards a second time plus the gradients;
  allgather: one all-to-all of the gradients); ``TRAFFIC`` counts the bytes this process sent.
  benchmarks/bench_distributed.py measures both, see benchmarks/RESULTS.md.
- The upstream gradient is averaged over the ranks, so backward computes the gradient of the
  mean over ranks of each rank's loss; when every rank uses the value as is, that is the
  single-process gradient, sliced. Under DistributedDataParallel, which averages parameter
  gradients over the W ranks, multiply this loss term by W to keep its single-process scale.
- Double backward (``create_graph=True``) through the distributed functions is not supported: it
  raises.
- The permutation test draws its permutations globally from ``seed`` (rank 0's random seed when
  None), so it returns the single-process p-value. Every rank holds the (N + M) x (1 + permutations)
  weights, as the single-process test does, and with ``bandwidth="median"`` gathers the pooled
  sample once to take the single-process median.
"""
from .estimators import DEFAULT_TIMEOUT_S, kernel_sum, mmd2, mmd_test
from .exchange import EXCHANGES
from .group import TRAFFIC, Traffic

__all__ = ["DEFAULT_TIMEOUT_S", "EXCHANGES", "TRAFFIC", "Traffic", "kernel_sum", "mmd2", "mmd_test"]

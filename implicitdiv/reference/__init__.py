"""Naive PyTorch estimators: the readable ground truth for every fused op (float32, float64,
autograd including double backward)."""
from . import gaussian, kernels, pairwise, ratio

__all__ = ["gaussian", "kernels", "pairwise", "ratio"]

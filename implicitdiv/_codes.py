"""The names the fused kernels know, in the order of their integer codes: the code a C++ or Triton
kernel takes for a kernel, a ratio map or a Gaussian kind is the index of its name here.

This table is the source: the cpp and Triton adapters and the Triton kernels derive their codes from
it. C++ cannot import it, so csrc/ writes the same names once more (kKernelNames in
csrc/pairwise_maps.h, kMapNames in csrc/losses_maps.h, kGaussianKindNames in csrc/losses_gaussian.h),
and tests/test_kernel_codes.py checks that every built instruction-set module agrees, in order.
"""
from __future__ import annotations

# Pairwise kernels (implicitdiv.reference.kernels gives their formulas).
KERNELS = ("rbf", "laplacian", "imq", "energy", "linear", "polynomial")
# Kernels of the dot product x.y rather than of the squared distance: neither centered nor
# recomputed from differences.
DOT_KERNELS = ("linear", "polynomial")

# Elementwise maps f of a ratio-loss term scale * (f(v) + offset) (implicitdiv.ops.ratio_terms).
RATIO_MAPS = ("softplus_neg", "softplus", "relu_one_minus", "relu_one_plus", "linear", "half_sq_shift", "half_sq",
              "exp_neg", "expm1_neg", "tanh", "exp_shift", "expm1", "pearson")

# Gaussian latent terms (implicitdiv.fused.cpp.gaussian gives their outputs).
GAUSSIAN_KINDS = ("nll", "kl_std_normal", "kl_gaussians", "reparameterize")
# The public function of each Gaussian kind, in kind order.
GAUSSIAN_FUNCTIONS = ("gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize")

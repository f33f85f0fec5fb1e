"""Which public functions each fast backend implements. A family's set grows as its fused ops land;
the resolver in implicitdiv.backend reads it (a function not listed runs on the reference under
backend="auto", and raises under an explicit backend)."""
from __future__ import annotations

# kernel_sum, mmd2, mmd_test, kid, gaussian_mixture_logpdf: the tiled pairwise engine
PAIRWISE_CPP: frozenset[str] = frozenset({"kernel_sum", "mmd2", "mmd_test", "kid", "gaussian_mixture_logpdf"})
PAIRWISE_TRITON: frozenset[str] = frozenset({"kernel_sum", "mmd2", "mmd_test", "kid", "gaussian_mixture_logpdf"})
# ratio losses and Gaussian latent terms: the fused elementwise-plus-reduction kernels
LOSSES_CPP: frozenset[str] = frozenset({
    "discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss",
    "gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize",
})
LOSSES_TRITON: frozenset[str] = frozenset({
    "discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss",
    "gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize",
})

IMPLEMENTED: dict[str, frozenset[str]] = {
    "cpp": PAIRWISE_CPP | LOSSES_CPP,
    "triton": PAIRWISE_TRITON | LOSSES_TRITON,
}


def has(backend: str, function: str) -> bool:
    return function in IMPLEMENTED.get(backend, ())

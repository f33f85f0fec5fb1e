"""Which public functions each fast backend implements. A family's set grows as its fused ops land;
the resolver in implicitdiv.backend reads it (a function not listed runs on the reference under
backend="auto", and raises under an explicit backend)."""
from __future__ import annotations

# kernel_sum, mmd2, mmd_test, kid, gaussian_mixture_logpdf: the tiled pairwise engine
PAIRWISE: frozenset[str] = frozenset({"kernel_sum", "mmd2", "mmd_test", "kid", "gaussian_mixture_logpdf"})
# ratio losses and Gaussian latent terms: the fused elementwise-plus-reduction kernels
LOSSES: frozenset[str] = frozenset({
    "discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss",
    "gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize",
})

# The C++ and Triton backends implement the same functions.
IMPLEMENTED: dict[str, frozenset[str]] = {
    "cpp": PAIRWISE | LOSSES,
    "triton": PAIRWISE | LOSSES,
}


def has(backend: str, function: str) -> bool:
    return function in IMPLEMENTED.get(backend, ())

"""Unrolled GAN's look-ahead critic (Metz et al., 2016, section 2.2, eq. 10-12), with torch.func.

The generator of an unrolled GAN minimizes f_K(theta_G, theta_D) = f(theta_G, theta_D^K(theta_G,
theta_D)): its loss under the critic as it will be after K more of the critic's own optimizer
steps, differentiated through those steps (so the generator sees how the critic would answer).
"""
from __future__ import annotations

import torch
from torch.func import functional_call

import implicitdiv as idv

_TINY = 1e-30  # keeps d sqrt(v) / dv finite where a moment estimate is exactly 0 (a maxout piece never chosen)


def unrolled_logits(critic: torch.nn.Module, optimizer: torch.optim.Adam, real: torch.Tensor, fake: torch.Tensor,
                    steps: int, *, backend=None) -> torch.Tensor:
    """Logits of `fake` under the critic after `steps` Adam updates on its GAN loss
    E[softplus(-D(real))] + E[softplus(D(fake))], replayed from the critic's current parameters and
    the optimizer's current moments (lr, betas, eps of its first parameter group):

        m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
        theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    with create_graph=True, so the result is differentiable through every step with respect to
    `fake` (and what produced it). The same batch serves every step. Inputs carry the seed axis
    (S, B, d); each seed's replay uses that seed's own mean loss (the loss times S)."""
    names = [n for n, _ in critic.named_parameters()]
    params = [p for _, p in critic.named_parameters()]
    buffers = dict(critic.named_buffers())
    group = optimizer.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    states = [optimizer.state.get(p, {}) for p in params]
    m = [st["exp_avg"] if st else torch.zeros_like(p) for st, p in zip(states, params)]
    v = [st["exp_avg_sq"] if st else torch.zeros_like(p) for st, p in zip(states, params)]
    t0 = float(states[0]["step"]) if states[0] else 0.0
    seeds = real.shape[0]

    def logits(theta, x):
        return functional_call(critic, {**dict(zip(names, theta)), **buffers}, (x,)).squeeze(-1)

    theta = params
    for k in range(steps):
        loss = seeds * idv.discriminator_loss(logits(theta, real), logits(theta, fake), kind="gan", backend=backend)
        grads = torch.autograd.grad(loss, theta, create_graph=True)
        t = t0 + k + 1
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
        c1, c2 = 1 - b1 ** t, (1 - b2 ** t) ** 0.5
        theta = [p - (lr / c1) * mi / (vi.clamp_min(_TINY).sqrt() / c2 + eps) for p, mi, vi in zip(theta, m, v)]
    return logits(theta, fake)

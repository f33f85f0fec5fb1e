"""Fast ops registered with torch.library, called without its dispatcher in eager mode.

A torch.library custom op is what lets torch.compile(fullgraph=True) keep a fused kernel as one
opaque node of its graph. Calling it eagerly, though, goes through torch's Python dispatcher and
the custom op's autograd wrapper: about 100 us a call, more than the whole kernel at batch sizes
of a few hundred (and more than the naive PyTorch the kernel replaces). So each op here is a pair:

    op.impl(*args)   the implementation itself, called directly in eager mode
    op.op(*args)     the registered custom op, called while torch.compile traces

and ``op(*args)`` picks one. Both run the same code on the same arguments, so eager and compiled
results agree to the bit; ``torch.library.opcheck(op.op, args)`` checks the registration.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

NAMESPACE = "implicitdiv"


class FusedOp:
    """A callable custom op: the direct implementation in eager mode, the registered op under
    torch.compile."""

    def __init__(self, name: str, impl: Callable, fake: Callable):
        self.name = f"{NAMESPACE}::{name}"
        self.impl = impl
        self.op = torch.library.custom_op(self.name, impl, mutates_args=())
        self.op.register_fake(fake)

    def __call__(self, *args):
        if torch.compiler.is_compiling():
            return self.op(*args)
        return self.impl(*args)


def fused_op(name: str, fake: Callable) -> Callable[[Callable], FusedOp]:
    """Decorator: ``@fused_op("kernel_sum", fake)`` over an annotated implementation registers
    implicitdiv::kernel_sum with the fake (shape) function ``fake`` and returns the FusedOp."""
    return lambda impl: FusedOp(name, impl, fake)

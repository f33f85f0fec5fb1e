"""Type aliases of the public signatures."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from torch import Tensor

# one bandwidth sigma > 0, or a sequence of them (the kernel is then the sum over the sequence); a
# tensor of them may require grad (learned bandwidths, implicitdiv._bandwidth)
Bandwidth = Union[float, Sequence[float], Tensor]

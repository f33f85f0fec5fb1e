"""Type aliases of the public signatures."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

# one bandwidth sigma > 0, or a sequence of them (the kernel is then the sum over the sequence)
Bandwidth = Union[float, Sequence[float]]

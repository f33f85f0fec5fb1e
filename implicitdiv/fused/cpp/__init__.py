"""Adapters from tensors to the raw-buffer routines of implicitdiv._C (built from csrc/)."""
from .threads import share_torch_openmp

OPENMP_TEAMS = share_torch_openmp()

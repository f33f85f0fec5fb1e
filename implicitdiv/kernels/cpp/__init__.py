"""Adapters from tensors to the raw-buffer routines of implicitdiv._C (built from csrc/)."""

"""Triton kernels (CUDA tensors; CPU tensors when TRITON_INTERPRET=1 is set before import)."""

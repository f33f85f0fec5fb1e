"""torch.autograd.Function + torch.library registration per fused op."""

"""The nn.Module fronts call the functional forms with their stored configuration."""
import torch

import implicitdiv as idv
from implicitdiv import modules


def test_modules_match_the_functions():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    m = modules.MMD2(kernel="imq", bandwidth=[0.5, 2.0], estimator="unbiased", backend="reference")
    assert torch.equal(m(x, y), idv.mmd2(x, y, kernel="imq", bandwidth=[0.5, 2.0], estimator="unbiased", backend="reference"))
    assert "imq" in repr(m)
    r, f = x[:, 0], y[:, 0]
    assert torch.equal(modules.DiscriminatorLoss("hinge", backend="reference")(r, f),
                       idv.discriminator_loss(r, f, kind="hinge", backend="reference"))
    assert torch.equal(modules.GeneratorLoss("js", saturating=True, backend="reference")(f),
                       idv.generator_loss(f, kind="js", saturating=True, backend="reference"))
    d, gl = modules.AdversarialLosses("lsgan", backend="reference")(r, f)
    assert torch.equal(d, idv.discriminator_loss(r, f, kind="lsgan", backend="reference"))
    assert torch.equal(gl, idv.generator_loss(f, kind="lsgan", backend="reference"))
    lv = torch.zeros_like(x)
    assert torch.equal(modules.GaussianNLL(reduction="sum", backend="reference")(x, x, lv),
                       idv.gaussian_nll(x, x, lv, reduction="sum", backend="reference"))
    assert torch.equal(modules.KLStdNormal(backend="reference")(x, lv), idv.kl_std_normal(x, lv, backend="reference"))

"""implicitdiv.nn: each module front returns what its function returns for the configuration it holds."""
import pytest
import torch

import implicitdiv as idv
from implicitdiv import nn as idn

G = torch.Generator().manual_seed(0)
X, Y = torch.randn(9, 3, generator=G, dtype=torch.float64), torch.randn(7, 3, generator=G, dtype=torch.float64)
R, F = X[:, 0].clone(), Y[:, 0].clone()
LV, LV2 = 0.3 * torch.randn(9, 3, generator=G, dtype=torch.float64), 0.3 * torch.randn(9, 3, generator=G, dtype=torch.float64)
W = torch.randn(9, 2, generator=G, dtype=torch.float64)
EPS = torch.randn(9, 3, generator=G, dtype=torch.float64)
REDUCTIONS = ("mean", "sum", "none")


def same(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
    return torch.equal(a, b)


CASES = [
    (idn.KernelSum(kernel="imq", bandwidth=(0.5, 2.0)), (X, Y, W),
     lambda **b: idv.kernel_sum(X, Y, kernel="imq", bandwidth=(0.5, 2.0), x_weights=W, **b)),
    (idn.MMDLoss(kernel="laplacian", bandwidth=[0.5, 2.0], estimator="unbiased"), (X, Y),
     lambda **b: idv.mmd2(X, Y, kernel="laplacian", bandwidth=[0.5, 2.0], estimator="unbiased", **b)),
    (idn.AdversarialLoss("lsgan", saturating=True), (R, F),
     lambda **b: idv.adversarial_losses(R, F, kind="lsgan", saturating=True, **b)),
    (idn.FDivergence("js"), (R, F), lambda **b: idv.fdiv_estimate(R, F, divergence="js", **b)),
    (idn.RatioMatchingLoss(), (R.exp(), F.exp()), lambda **b: idv.ratio_matching_loss(R.exp(), F.exp(), **b)),
    (idn.Reparameterize(), (X, LV, EPS), lambda **b: idv.reparameterize(X, LV, EPS, **b)),
    (idn.GaussianMixtureLogPDF(), (Y, X, LV), lambda **b: idv.gaussian_mixture_logpdf(Y, X, LV, **b)),
]
for red in REDUCTIONS:
    CASES += [
        (idn.DiscriminatorLoss("hinge", reduction=red), (R, F),
         lambda red=red, **b: idv.discriminator_loss(R, F, kind="hinge", reduction=red, **b)),
        (idn.GeneratorLoss("kl", saturating=True, reduction=red), (F,),
         lambda red=red, **b: idv.generator_loss(F, kind="kl", saturating=True, reduction=red, **b)),
        (idn.GaussianNLLLoss(reduction=red), (X, Y.mean(0), LV),
         lambda red=red, **b: idv.gaussian_nll(X, Y.mean(0), LV, reduction=red, **b)),
        (idn.KLStdNormalLoss(reduction=red), (X, LV), lambda red=red, **b: idv.kl_std_normal(X, LV, reduction=red, **b)),
        (idn.KLGaussiansLoss(reduction=red), (X, LV, X.flip(0), LV2),
         lambda red=red, **b: idv.kl_gaussians(X, LV, X.flip(0), LV2, reduction=red, **b)),
    ]


@pytest.mark.parametrize("module,args,function", CASES, ids=lambda c: repr(c) if isinstance(c, torch.nn.Module) else "")
def test_module_returns_what_its_function_returns(module, args, function):
    with idv.use_backend("reference"):
        assert same(module(*args), function())


@pytest.mark.parametrize("backend", idv.backends())
def test_backend_is_passed_through(backend):
    """The module's backend= reaches the function: an impossible backend fails the same way."""
    assert torch.allclose(idn.MMDLoss(backend=backend)(X, Y), idv.mmd2(X, Y, backend="reference"))
    with pytest.raises(ValueError, match="backend"):
        idn.KLStdNormalLoss(backend="gpu?")(X, LV)


def test_modules_hold_no_parameters_and_show_their_configuration():
    m = idn.MMDLoss(kernel="imq", bandwidth=(1.0, 2.0), estimator="unbiased")
    assert list(m.parameters()) == [] and list(m.buffers()) == [] and m.state_dict() == {}
    assert "kernel='imq'" in repr(m) and "bandwidth=(1.0, 2.0)" in repr(m) and "estimator='unbiased'" in repr(m)
    assert repr(idn.KLStdNormalLoss(reduction="sum")) == "KLStdNormalLoss(reduction='sum', backend=None)"


def test_every_front_is_exported():
    fronts = {n for n, v in vars(idn).items() if isinstance(v, type) and issubclass(v, torch.nn.Module) and not n.startswith("_")}
    assert fronts == set(idn.__all__) and idv.nn is idn

"""Elementwise math of the Triton loss kernels (ratio and Gaussian terms), written so float32 and
float64 keep every bit they can: the Triton side of csrc/losses_math.h."""
import triton
import triton.language as tl


@triton.jit
def expm1_exp(x, IS64: tl.constexpr):
    """(e^x - 1, e^x): Taylor series in Horner form for |x| < 1/2 (no cancellation), e^x - 1 beyond."""
    e = tl.exp(x)
    p = tl.full(x.shape, 1.0, x.dtype)
    if IS64:
        for k in tl.static_range(17, 1, -1):
            p = 1.0 + p * x / k
    else:
        for k in tl.static_range(9, 1, -1):
            p = 1.0 + p * x / k
    small = tl.abs(x) < 0.5
    return tl.where(small, x * p, e - 1.0), e


@triton.jit
def log1p_unit(u, IS64: tl.constexpr):
    """log(1 + u) for u in [0, 1]: 2 atanh(s), s = u / (2 + u) <= 1/3, as a series in s^2."""
    s = u / (2.0 + u)
    s2 = s * s
    one = tl.full(s2.shape, 1.0, s2.dtype)
    if IS64:
        p = one / 35
        for k in tl.static_range(16, -1, -1):
            p = p * s2 + one / (2 * k + 1)
    else:
        p = one / 17
        for k in tl.static_range(7, -1, -1):
            p = p * s2 + one / (2 * k + 1)
    return 2.0 * s * p


@triton.jit
def softplus(v, IS64: tl.constexpr):
    """(softplus(v), sigmoid(v)) from u = e^-|v|; as torch's softplus, v > 20 gives (v, 1)."""
    u = tl.exp(-tl.abs(v))
    sp = tl.maximum(v, 0.0) + log1p_unit(u, IS64)
    inv = 1.0 / (1.0 + u)
    sig = tl.where(v >= 0.0, inv, u * inv)
    linear = v > 20.0
    nan = v != v
    return tl.where(linear, v, tl.where(nan, v, sp)), tl.where(linear, 1.0, tl.where(nan, v, sig))


@triton.jit
def tanh(v, IS64: tl.constexpr):
    """(tanh(v), 1 - tanh(v)^2) with the derivative as 4 u / (1 + u)^2, u = e^-2|v| (no cancellation)."""
    t, u = expm1_exp(-2.0 * tl.abs(v), IS64)
    mag = -t / (2.0 + t)
    w = 1.0 / (1.0 + u)
    return tl.where(v < 0.0, -mag, mag), 4.0 * u * w * w


@triton.jit
def mean_scale(n, SIGN: tl.constexpr, MEAN: tl.constexpr, DTYPE: tl.constexpr):
    """sign / n in DTYPE (sign when not MEAN), formed here so float64 keeps every bit (float kernel
    arguments are float32). n may arrive as a constexpr (Triton specializes integer arguments equal
    to 1), hence the addition, not .to()."""
    sign = tl.full((), SIGN, DTYPE)
    if MEAN:
        return sign / (tl.full((), 0, DTYPE) + n)
    return sign

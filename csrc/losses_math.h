// Branch-free exp, expm1, softplus, sigmoid and tanh that GCC can vectorize (no libm calls in the
// loop), accurate to a few ulp in float and double. NaN in gives NaN out; +-inf and overflow follow
// IEEE (exp(1e4) = inf, exp(-1e4) = 0).
#pragma once
#include <cstdint>
#include <cstring>

namespace implicitdiv {
namespace lossmath {

// 0 for a finite v, NaN for NaN and +-inf (v - v): added to a value, it carries the NaN rule of the
// public functions (a NaN or +-inf input gives NaN) without a branch or a select.
template <typename T>
inline T nan_unless_finite(T v) {
  return v - v;
}

template <typename T>
struct Consts;

template <>
struct Consts<double> {
  using Int = int64_t;
  using UInt = uint64_t;
  static constexpr double kLog2e = 1.4426950408889634;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // trailing zeros: n * kLn2Hi is exact
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  static constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  static constexpr double kHi = 710.0;                  // exp(710) overflows
  static constexpr double kLo = -760.0;                 // exp(-760) underflows to 0
  static constexpr int kMantissa = 52;
  static constexpr int kBias = 1023;
  static constexpr int kBigExponent = 60;  // above 2^60, expm1(x) == exp(x)
  // 1/k! for k = 2..12: |r| <= ln2/2 leaves a Taylor remainder below 1e-16
  static constexpr int kExpTerms = 11;
  static constexpr double kExpCoef[kExpTerms] = {
      1.0 / 2,        1.0 / 6,         1.0 / 24,         1.0 / 120,         1.0 / 720,         1.0 / 5040,
      1.0 / 40320,    1.0 / 362880,    1.0 / 3628800,    1.0 / 39916800,    1.0 / 479001600};
  // log1p(u) = 2 atanh(s), s = u / (2 + u) <= 1/3: 1/(2k+1) for k = 0..16
  static constexpr int kAtanhTerms = 17;
};

template <>
struct Consts<float> {
  using Int = int32_t;
  using UInt = uint32_t;
  static constexpr float kLog2e = 1.44269504f;
  static constexpr float kLn2Hi = 0.693145751953125f;
  static constexpr float kLn2Lo = 1.428606765330187045e-06f;
  static constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  static constexpr float kHi = 89.0f;
  static constexpr float kLo = -110.0f;
  static constexpr int kMantissa = 23;
  static constexpr int kBias = 127;
  static constexpr int kBigExponent = 30;
  static constexpr int kExpTerms = 6;  // 1/k! for k = 2..7
  static constexpr float kExpCoef[kExpTerms] = {1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
  static constexpr int kAtanhTerms = 8;
};

template <typename T>
inline typename Consts<T>::UInt bits(T x) {
  typename Consts<T>::UInt out;
  std::memcpy(&out, &x, sizeof(T));
  return out;
}

template <typename T>
inline T from_bits(typename Consts<T>::UInt b) {
  T out;
  std::memcpy(&out, &b, sizeof(T));
  return out;
}

// c ? a : b on the bits. Written as a conditional with a constant arm (a clamp), GCC threads the
// constant through everything after it, and the vectorized loop then evaluates log1p and the
// divisions of softplus twice under complementary masks; a select on the bits is straight-line
// code that it keeps as one blend.
template <typename T>
inline T select(bool c, T a, T b) {
  using U = typename Consts<T>::UInt;
  const U mask = U(0) - U(c);
  return from_bits<T>((bits(a) & mask) | (bits(b) & ~mask));
}

template <typename T>
inline T pow2(typename Consts<T>::Int k) {
  using C = Consts<T>;
  return from_bits<T>(static_cast<typename C::UInt>(k + C::kBias) << C::kMantissa);
}

// x = n ln2 + r with |r| <= ln2/2: e^x = h1 * h2 * (1 + pm1), pm1 = e^r - 1, 2^n = h1 * h2 (split so
// that neither half overflows or underflows on its own).
template <typename T>
struct ExpParts {
  T pm1, h1, h2;
  typename Consts<T>::Int n;
};

template <typename T>
inline ExpParts<T> exp_parts(T x) {
  using C = Consts<T>;
  T xc = select(x > C::kHi, C::kHi, x);  // NaN compares false and stays NaN
  xc = select(xc < C::kLo, C::kLo, xc);
  // Adding kShift rounds to an integer n that then sits in the low mantissa bits of `shifted`; n is
  // read from those bits, not by a float-to-int conversion (undefined for NaN, and a NaN test would
  // be one more constant arm). A NaN x leaves pm1 and so the result NaN whatever n's bits are.
  const T shifted = xc * C::kLog2e + C::kShift;
  const T n = shifted - C::kShift;
  T r = xc - n * C::kLn2Hi;
  r = r - n * C::kLn2Lo;
  T p = C::kExpCoef[C::kExpTerms - 1];
  for (int k = C::kExpTerms - 2; k >= 0; --k) p = p * r + C::kExpCoef[k];
  ExpParts<T> out;
  out.pm1 = r + r * r * p;
  out.n = static_cast<typename C::Int>(bits(shifted) - bits(C::kShift));
  const typename C::Int half = out.n >> 1;
  out.h1 = pow2<T>(half);
  out.h2 = pow2<T>(out.n - half);
  return out;
}

template <typename T>
inline T exp(T x) {
  const ExpParts<T> e = exp_parts(x);
  return (e.h1 * (T(1) + e.pm1)) * e.h2;
}

// e^x - 1 without cancellation near 0: 2^n pm1 + (2^n - 1); also writes e^x from the same parts.
template <typename T>
inline T expm1(T x, T& exp_x) {
  const ExpParts<T> e = exp_parts(x);
  exp_x = (e.h1 * (T(1) + e.pm1)) * e.h2;
  const T scale = e.h1 * e.h2;
  const T small = scale * e.pm1 + (scale - T(1));
  return e.n > Consts<T>::kBigExponent ? exp_x : small;
}

template <typename T>
inline T expm1(T x) {
  T unused;
  return expm1(x, unused);
}

// log(1 + u) for u in [0, 1] (NaN passes through): 2 atanh(s) with s = u / (2 + u).
template <typename T>
inline T log1p_unit(T u) {
  const T s = u / (T(2) + u);
  const T s2 = s * s;
  constexpr int kTerms = Consts<T>::kAtanhTerms;
  T p = T(1) / T(2 * kTerms - 1);
  for (int k = kTerms - 2; k >= 0; --k) p = p * s2 + T(1) / T(2 * k + 1);
  return T(2) * s * p;
}

// The part of softplus that depends on |v| only, so softplus(v) and softplus(-v) can share it:
// u = e^-|v|, log1p(u) and 1/(1 + u).
template <typename T>
struct SoftplusCore {
  T u, log1p_u, inv;
};

template <typename T>
inline SoftplusCore<T> softplus_core(T v) {
  const T a = v < T(0) ? -v : v;
  SoftplusCore<T> c;
  c.u = exp(-a);
  c.log1p_u = log1p_unit(c.u);
  c.inv = T(1) / (T(1) + c.u);
  return c;
}

// softplus(v) = max(v, 0) + log(1 + e^-|v|) and its derivative sigmoid(v) = 1/(1 + u) for v >= 0,
// u/(1 + u) below, from c = softplus_core(v) or softplus_core(-v) (the same bits). Like
// torch.nn.functional.softplus, v > 20 gives v and derivative 1 exactly.
template <typename T>
inline T softplus(T v, const SoftplusCore<T>& c, T& sigmoid) {
  const T pos = v > T(0) ? v : T(0);
  const T sp = pos + c.log1p_u;
  const T sig = v >= T(0) ? c.inv : c.u * c.inv;
  const bool linear = v > T(20);
  sigmoid = select(linear, T(1), sig);
  return select(linear, v, sp);  // a branch here would let GCC sink sp into it and not vectorize
}

template <typename T>
inline T softplus(T v, T& sigmoid) {
  return softplus(v, softplus_core(v), sigmoid);
}

// tanh(v) = sign(v) (1 - e^-2|v|) / (1 + e^-2|v|) and its derivative 4 e^-2|v| / (1 + e^-2|v|)^2.
template <typename T>
inline T tanh(T v, T& derivative) {
  const T a = v < T(0) ? -v : v;
  T u;
  const T t = expm1(T(-2) * a, u);  // t in (-1, 0], u = e^-2|v|
  const T mag = -t / (T(2) + t);
  const T w = T(1) / (T(1) + u);
  derivative = T(4) * u * w * w;
  return v < T(0) ? -mag : mag;
}

}  // namespace lossmath
}  // namespace implicitdiv

// Fixed-width SIMD vectors (GCC/Clang vector extensions, 64 bytes: one AVX-512 register, two AVX2
// registers elsewhere) and the few vector functions the pairwise engine needs. Every function is
// lane-wise and branch-free, so a result never depends on how work was split between threads.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace implicitdiv {
namespace simd {

template <typename T>
struct Lanes;

template <>
struct Lanes<float> {
  static constexpr int W = 16;
  typedef float V __attribute__((vector_size(64)));
  typedef float VU __attribute__((vector_size(64), aligned(4)));  // unaligned access
  typedef int32_t I __attribute__((vector_size(64)));
};

template <>
struct Lanes<double> {
  static constexpr int W = 8;
  typedef double V __attribute__((vector_size(64)));
  typedef double VU __attribute__((vector_size(64), aligned(8)));
  typedef int64_t I __attribute__((vector_size(64)));
};

template <typename T>
using Vec = typename Lanes<T>::V;
template <typename T>
using Mask = typename Lanes<T>::I;

template <typename T>
inline Vec<T> splat(T s) {
  return Vec<T>{} + s;
}

// Loads/stores from 64-byte aligned scratch.
template <typename T>
inline Vec<T> load(const T* p) {
  return *reinterpret_cast<const Vec<T>*>(p);
}
template <typename T>
inline void store(T* p, Vec<T> v) {
  *reinterpret_cast<Vec<T>*>(p) = v;
}

// mask ? a : b, lane by lane (NaN in the chosen operand is kept).
template <typename T>
inline Vec<T> select(Mask<T> m, Vec<T> a, Vec<T> b) {
  return m ? a : b;
}

#if defined(__AVX512F__)
template <typename T>
inline bool any(Mask<T> m) {
  const __m512i v = (__m512i)m;
  return _mm512_test_epi64_mask(v, v) != 0;
}
#else
template <typename T>
inline bool any(Mask<T> m) {
  uint64_t words[8];
  std::memcpy(words, &m, 64);
  return (words[0] | words[1] | words[2] | words[3] | words[4] | words[5] | words[6] | words[7]) != 0;
}
#endif

// Sum of the lanes in a fixed order (lane 0 first), accumulated in double.
template <typename T>
inline double hsum(Vec<T> v) {
  double s = 0.0;
  for (int l = 0; l < Lanes<T>::W; ++l) s += static_cast<double>(v[l]);
  return s;
}

// out[0 .. W) += v, lane by lane in double (out need not be aligned).
typedef double DoubleVU __attribute__((vector_size(64), aligned(8)));
inline void add_to(double* out, Vec<double> v) { *reinterpret_cast<DoubleVU*>(out) += v; }
inline void add_to(double* out, Vec<float> v) {
  typedef float Half __attribute__((vector_size(32)));
  typedef double Wide __attribute__((vector_size(64)));
  const Half lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const Half hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  reinterpret_cast<DoubleVU*>(out)[0] += __builtin_convertvector(lo, Wide);
  reinterpret_cast<DoubleVU*>(out)[1] += __builtin_convertvector(hi, Wide);
}

inline Vec<float> vsqrt(Vec<float> x) {
#if defined(__AVX512F__)
  return (Vec<float>)_mm512_sqrt_ps((__m512)x);
#else
  Vec<float> r;
  for (int l = 0; l < 16; ++l) r[l] = std::sqrt(x[l]);
  return r;
#endif
}

inline Vec<double> vsqrt(Vec<double> x) {
#if defined(__AVX512F__)
  return (Vec<double>)_mm512_sqrt_pd((__m512d)x);
#else
  Vec<double> r;
  for (int l = 0; l < 8; ++l) r[l] = std::sqrt(x[l]);
  return r;
#endif
}

// exp(x) for x <= 0 (the only arguments the engine produces): x = n ln2 + r with |r| <= ln2 / 2,
// exp(r) by its Taylor polynomial (degree 7 for float, 13 for double: below half an ulp), times 2^n
// built in the exponent bits. Arguments below the smallest normal result give 0; NaN stays NaN.
inline Vec<float> vexp(Vec<float> x) {
  typedef Lanes<float>::I I;
  const Vec<float> lo = splat(-87.3365448f);  // ln of the smallest normal float, 2^-126
  const I under = x < lo;
  x = (x < lo) ? lo : x;
  const Vec<float> magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const Vec<float> t = x * 1.44269504088896341f + magic;
  const Vec<float> n = t - magic;
  const I ni = (I)t - (I)magic;
  Vec<float> r = x - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  Vec<float> p = splat(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const I bits = (ni + 127) << 23;
  const Vec<float> res = p * (Vec<float>)bits;
  return under ? Vec<float>{} : res;
}

inline Vec<double> vexp(Vec<double> x) {
  typedef Lanes<double>::I I;
  const Vec<double> lo = splat(-708.39641853226408);  // ln of the smallest normal double, 2^-1022
  const I under = x < lo;
  x = (x < lo) ? lo : x;
  const Vec<double> magic = splat(6755399441055744.0);  // 1.5 * 2^52
  const Vec<double> t = x * 1.4426950408889634074 + magic;
  const Vec<double> n = t - magic;
  const I ni = (I)t - (I)magic;
  Vec<double> r = x - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  Vec<double> p = splat(1.0 / 6227020800.0);
  const double coef[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                         1.0 / 5040.0,      1.0 / 720.0,      1.0 / 120.0,     1.0 / 24.0,     1.0 / 6.0,
                         0.5,               1.0,              1.0};
  for (double c : coef) p = p * r + c;
  const I bits = (ni + 1023) << 52;
  const Vec<double> res = p * (Vec<double>)bits;
  return under ? Vec<double>{} : res;
}

}  // namespace simd
}  // namespace implicitdiv

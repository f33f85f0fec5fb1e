#include "losses_gaussian.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "losses_driver.h"
#include "losses_math.h"

namespace implicitdiv {

namespace {

constexpr int64_t kBlock = 512;           // columns per cache-resident block
constexpr int64_t kChunkElems = 16384;    // about this many elements per partial sum

template <typename T>
constexpr T kLog2Pi = T(1.8378770664093454835606594728112);

// (z - m)^2 e^-lv as a * b and (z - m) e^-lv as q, for a difference diff = z - m and a log-variance
// lv: a = diff, b = q = diff e^-lv; where e^-lv alone would overflow (lv < 1 - kHi: -88 in float,
// -709 in double; implicitdiv/fused/triton/gaussian.py _square uses the same), its two halves carry it, a = b = diff e^(-lv/2), q = a e^(-lv/2), so no factor
// overflows where the term or q does not (a few roundings more, there only). The term's half comes
// before the last product (a * b may overflow where a * b / 2 does not).
template <typename T>
struct Square {
  T a, b, q;
  Square(T diff, T lv) {
    // selects, not branches, so the element loop stays vectorized; q = a h in both cases
    const bool split = lv < T(1) - lossmath::Consts<T>::kHi;
    const T h = lossmath::exp(split ? T(-0.5) * lv : -lv);
    a = split ? diff * h : diff;
    q = a * h;
    b = split ? a : q;
  }
};

// 1/2 [(z - m)^2 e^-lv + lv + log 2 pi]
struct Nll {
  static constexpr int kIn = 3, kOut = 3;
  static constexpr bool kNanRule = true;
  template <typename T>
  static T eval(const T (&x)[4], T ds, T (&o)[3]) {
    const Square<T> t(x[0] - x[1], x[2]);
    o[0] = ds * t.q;
    o[1] = -(ds * t.q);
    o[2] = ds * T(0.5) - (ds * T(0.5) * t.a) * t.b;  // ds (1/rows for a mean) first: its share may be finite
    return (T(0.5) * t.a) * t.b + T(0.5) * (x[2] + kLog2Pi<T>);
  }
};

// 1/2 [e^lv + m^2 - 1 - lv], with e^lv - 1 as expm1
struct KlStdNormal {
  static constexpr int kIn = 2, kOut = 2;
  static constexpr bool kNanRule = true;
  template <typename T>
  static T eval(const T (&x)[4], T ds, T (&o)[3]) {
    const T e = lossmath::expm1(x[1]);
    o[0] = ds * x[0];
    o[1] = ds * T(0.5) * e;
    return T(0.5) * ((e - x[1]) + x[0] * x[0]);
  }
};

// 1/2 [lp - lq + e^(lq - lp) - 1 + (mq - mp)^2 e^-lp]
struct KlGaussians {
  static constexpr int kIn = 4, kOut = 3;
  static constexpr bool kNanRule = true;
  template <typename T>
  static T eval(const T (&x)[4], T ds, T (&o)[3]) {
    const Square<T> t(x[0] - x[2], x[3]);
    const T e = lossmath::expm1(x[1] - x[3]);
    o[0] = ds * t.q;
    o[1] = ds * T(0.5) * e;
    o[2] = -(o[1] + (ds * T(0.5) * t.a) * t.b);  // ds first, as in Nll
    return T(0.5) * ((x[3] - x[1]) + e) + (T(0.5) * t.a) * t.b;
  }
};

// z = m + e^(lv/2) eps; row value -1/2 [eps^2 + lv + log 2 pi]
struct Reparam {
  static constexpr int kIn = 3, kOut = 3;
  static constexpr bool kNanRule = false;
  template <typename T>
  static T eval(const T (&x)[4], T ds, T (&o)[3]) {
    const T sd = lossmath::exp(T(0.5) * x[1]);
    o[0] = x[0] + sd * x[2];
    o[1] = ds * T(0.5) * sd * x[2];
    o[2] = ds * sd;
    return T(-0.5) * (x[2] * x[2] + x[1] + kLog2Pi<T>);
  }
};

// Each kind's term per element; with kNanRule (the losses) NaN where any of its inputs is NaN or
// +-inf, so the row sums and the total are NaN there (the public functions' rule: never the +inf
// or finite limit the formula reaches).
// The terms of a block in double: a float term can overflow where its share of a mean does not.
template <typename K, typename T>
double wide_block(const T* const (&in)[K::kIn], int64_t len) {
  double sum = 0;
  for (int64_t j = 0; j < len; ++j) {
    double x[4] = {}, o[3];
    for (int q = 0; q < K::kIn; ++q) x[q] = static_cast<double>(in[q][j]);
    sum += K::eval(x, 0.0, o);
  }
  return sum;
}

template <typename K, typename T>
double run(const GaussianCall<T>& call, int threads) {
  const int64_t rows = call.rows, d = call.d;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElems / d);
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  const T ds = T(call.deriv_scale);
  std::vector<double> partials(chunks, 0.0);
  for_each_chunk(chunks, threads, [&](int64_t c) {
    T values[kBlock];
    T unwanted[K::kOut][kBlock];
    const int64_t row_begin = c * rows_per_chunk, row_end = std::min(rows, (c + 1) * rows_per_chunk);
    std::vector<double> row_sums(row_end - row_begin);
    for (int64_t r = row_begin; r < row_end; ++r) {
      double row_sum = 0;
      for (int64_t j0 = 0; j0 < d; j0 += kBlock) {
        const int64_t len = std::min(kBlock, d - j0);
        const T* in[K::kIn];
        T* out[K::kOut];
        for (int q = 0; q < K::kIn; ++q) in[q] = call.in[q] + r * call.in_row_stride[q] + j0;
        for (int q = 0; q < K::kOut; ++q) out[q] = call.outs[q] != nullptr ? call.outs[q] + r * d + j0 : unwanted[q];
#pragma GCC ivdep
        for (int64_t j = 0; j < len; ++j) {
          T x[4] = {};
          for (int q = 0; q < K::kIn; ++q) x[q] = in[q][j];
          T o[3];
          values[j] = K::eval(x, ds, o);
          if constexpr (K::kNanRule)
            for (int q = 0; q < K::kIn; ++q) values[j] += lossmath::nan_unless_finite(x[q]);
          for (int q = 0; q < K::kOut; ++q) out[q][j] = o[q];
        }
        double block_sum = sum_block(values, len);
        if constexpr (std::is_same_v<T, float>)
          if (std::isinf(block_sum)) block_sum = wide_block<K>(in, len);
        row_sum += block_sum;
      }
      if (call.row_values != nullptr) call.row_values[r] = T(row_sum);
      row_sums[r - row_begin] = row_sum;
    }
    partials[c] = pairwise_sum(row_sums.data(), row_end - row_begin);
  });
  double total = 0;
  sum_partials(partials, chunks, 1, &total);
  return total;
}

}  // namespace

template <typename T>
double gaussian_terms(const GaussianCall<T>& call, int threads) {
  switch (static_cast<GaussianKind>(call.kind)) {
    case GaussianKind::kNll: return run<Nll>(call, threads);
    case GaussianKind::kKlStdNormal: return run<KlStdNormal>(call, threads);
    case GaussianKind::kKlGaussians: return run<KlGaussians>(call, threads);
    case GaussianKind::kReparam: return run<Reparam>(call, threads);
    default: throw std::invalid_argument("unknown Gaussian kind id");
  }
}

template double gaussian_terms<float>(const GaussianCall<float>&, int);
template double gaussian_terms<double>(const GaussianCall<double>&, int);

}  // namespace implicitdiv

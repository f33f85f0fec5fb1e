// Fused Gaussian latent terms (log-variance parameterization). Each kind is an elementwise map of
// up to four inputs to one value, summed over the last dim of every row, plus up to three
// elementwise outputs (the derivatives, or the sample z), all in one pass.
#pragma once
#include <array>
#include <cstdint>

namespace implicitdiv {

enum class GaussianKind : int {
  kNll,          // in z, m, lv       outs d/dz, d/dm, d/dlv
  kKlStdNormal,  // in m, lv          outs d/dm, d/dlv
  kKlGaussians,  // in mq, lq, mp, lp outs d/dmq (d/dmp = -d/dmq), d/dlq, d/dlp
  kReparam,      // in m, lv, eps     outs z, d z/d lv, d z/d eps; the row value is log q(z)
  kCount
};

// A kind's code is its index here: implicitdiv._codes.GAUSSIAN_KINDS in order (tests/test_kernel_codes.py).
inline constexpr const char* kGaussianKindNames[] = {"nll", "kl_std_normal", "kl_gaussians", "reparameterize"};
static_assert(sizeof(kGaussianKindNames) / sizeof(kGaussianKindNames[0]) == static_cast<int>(GaussianKind::kCount),
              "one name per kind");

template <typename T>
struct GaussianCall {
  int kind;
  int64_t rows, d;
  std::array<const T*, 4> in;             // row r of input q starts at in[q] + r * in_row_stride[q]
  std::array<int64_t, 4> in_row_stride;   // 0 for an input broadcast over rows
  std::array<T*, 3> outs;                 // contiguous rows x d, or nullptr where not wanted
  double deriv_scale;                     // multiplies the derivative outputs (1/rows for a mean)
  T* row_values;                          // per-row sums, or nullptr when only the total is wanted
};

// Returns the sum over rows of the per-row sums, in double, in a fixed order.
template <typename T>
double gaussian_terms(const GaussianCall<T>& call, int threads);

}  // namespace implicitdiv

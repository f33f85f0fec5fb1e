// Fused discriminator log-ratio terms: one pass over a logit vector evaluates up to a few terms
// scale * (f(v) + offset) (f from losses_maps.h), writing per-element values or only their sums,
// and the scaled derivatives scale * f'(v) when asked.
#pragma once
#include <cstdint>
#include <vector>

namespace implicitdiv {

template <typename T>
struct RatioTerm {
  int map;             // a Map
  double offset;       // added to f(v) before scaling
  double value_scale;  // applied to each value, written or summed
  double deriv_scale;  // applied to written derivatives
  T* values;           // n values, or nullptr: only the sum is wanted
  T* derivs;           // n derivatives, or nullptr: none wanted
};

// sums[k] = sum_i value_scale_k (f_k(x_i) + offset_k) in double, for the terms that write no values
// (each value scaled before it is summed: with the 1/n of a mean, an exponential that overflows T can
// still give a finite term, which map_block then recomputes in double).
template <typename T>
void ratio_terms(const T* x, int64_t n, const std::vector<RatioTerm<T>>& terms, int threads, double* sums);

}  // namespace implicitdiv

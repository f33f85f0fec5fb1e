// The reduction driver shared by the fused losses: work is cut into chunks of a fixed size (not
// depending on the thread count), threads claim chunks one by one, every chunk writes
// its own partial sums, and the partials are added in chunk order. The same inputs give the same
// bits for any thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "threads.h"

namespace implicitdiv {

// Runs body(chunk) for chunk in [0, chunks) on up to `threads` threads (threads.h).
template <typename Body>
void for_each_chunk(int64_t chunks, int threads, const Body& body) {
  parallel_items(chunks, threads, [&](int64_t c, int) { body(c); });
}

// Sum of v[0..n) in double, in a fixed order: eight interleaved lanes, then the lanes pairwise.
template <typename T>
inline double sum_block(const T* __restrict v, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += static_cast<double>(v[i + l]);
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(v[i]);
  return (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))) + tail;
}

// Sum of n doubles by pairwise halving (sequential below 8): its rounding grows with log2(n), where a
// running sum's grows with n (a float64 loss over 16,383 equal rows erred by 1e-13 relative).
inline double pairwise_sum(const double* v, int64_t n) {
  if (n <= 8) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += v[i];
    return s;
  }
  const int64_t h = n / 2;
  return pairwise_sum(v, h) + pairwise_sum(v + h, n - h);
}

// Adds per-chunk partials (chunks x k, row-major) in chunk order into out[0..k).
inline void sum_partials(const std::vector<double>& partials, int64_t chunks, int k, double* out) {
  for (int j = 0; j < k; ++j) out[j] = 0;
  for (int64_t c = 0; c < chunks; ++c)
    for (int j = 0; j < k; ++j) out[j] += partials[c * k + j];
}

}  // namespace implicitdiv

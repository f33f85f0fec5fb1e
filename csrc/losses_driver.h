// The reduction driver shared by the fused losses: work is cut into chunks of a fixed size (not
// depending on the thread count), std::threads take contiguous runs of chunks, every chunk writes
// its own partial sums, and the partials are added in chunk order. The same inputs give the same
// bits for any thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace implicitdiv {

// Runs body(chunk) for chunk in [0, chunks) on up to `threads` std::threads.
template <typename Body>
void for_each_chunk(int64_t chunks, int threads, const Body& body) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, chunks));
  auto run = [&](int64_t w) {
    const int64_t begin = chunks * w / workers, end = chunks * (w + 1) / workers;
    for (int64_t c = begin; c < end; ++c) body(c);
  };
  if (workers == 1) {
    run(0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
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

// Adds per-chunk partials (chunks x k, row-major) in chunk order into out[0..k).
inline void sum_partials(const std::vector<double>& partials, int64_t chunks, int k, double* out) {
  for (int j = 0; j < k; ++j) out[j] = 0;
  for (int64_t c = 0; c < chunks; ++c)
    for (int j = 0; j < k; ++j) out[j] += partials[c * k + j];
}

}  // namespace implicitdiv

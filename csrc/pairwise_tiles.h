// Tile-level building blocks of the pairwise engine: packed column panels, the register-blocked
// dot-product micro-kernel S = X_I Y_J^T, and the two contractions T_I += K Z_J (vectorized over
// the contracted feature for wide Z, over the tile's columns for narrow Z).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "pairwise_simd.h"

namespace implicitdiv {
namespace tiles {

using simd::Lanes;
using simd::Vec;

constexpr int NV = 4;  // vectors per tile row
constexpr int RB = 4;  // rows per register block
// Columns per tile, and rows per tile too (square tiles: a symmetric sum's diagonal tiles are the
// tiles holding i == j): 64 for float, 32 for double.
template <typename T>
constexpr int64_t TJ = NV * Lanes<T>::W;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
template <typename T>
inline int64_t padded(int64_t n) {
  return ceil_div(n, Lanes<T>::W) * Lanes<T>::W;
}

// 64-byte aligned, zero-initialized scratch.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(int64_t n) { resize(n); }
  void resize(int64_t n) {
    if (n <= size_) return;
    const size_t bytes = ((static_cast<size_t>(n) * sizeof(T) + 63) / 64) * 64;
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (!p) throw std::bad_alloc();
    std::fill(p, p + n, T(0));
    data_.reset(p);
    size_ = n;
  }
  void zero(int64_t n) { std::fill(data_.get(), data_.get() + n, T(0)); }
  T* get() const { return data_.get(); }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  int64_t size_ = 0;
};

// The columns of src (n, k) row-major, tile by tile: out[t][c][j] = src[t*TJ + j][c], zero past n.
template <typename T>
void pack_transposed(const T* src, int64_t n, int64_t k, T* out) {
  const int64_t tj = TJ<T>;
  const int64_t tiles = ceil_div(n, tj);
  for (int64_t t = 0; t < tiles; ++t) {
    T* panel = out + t * k * tj;
    const int64_t cols = std::min(tj, n - t * tj);
    for (int64_t j = 0; j < cols; ++j) {
      const T* row = src + (t * tj + j) * k;
      for (int64_t c = 0; c < k; ++c) panel[c * tj + j] = row[c];
    }
    for (int64_t c = 0; c < k; ++c)
      for (int64_t j = cols; j < tj; ++j) panel[c * tj + j] = T(0);
  }
}

// The rows of src (n, k), tile by tile, each padded to kp = padded(k): out[t][j][c], zero past n, k.
template <typename T>
void pack_rows(const T* src, int64_t n, int64_t k, T* out) {
  const int64_t tj = TJ<T>, kp = padded<T>(k);
  const int64_t tiles = ceil_div(n, tj);
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t j = 0; j < tj; ++j) {
      T* dst = out + (t * tj + j) * kp;
      const int64_t i = t * tj + j;
      for (int64_t c = 0; c < kp; ++c) dst[c] = (i < n && c < k) ? src[i * k + c] : T(0);
    }
  }
}

// S[r][j] = sum_{c < k} X[r * ldx + c] * panel[c][j] for r < rows (X row-major, ldx = k unless given;
// panel k x TJ); with Accumulate, S[r][j] += that sum instead.
template <typename T, bool Accumulate = false>
void dot_tile(const T* X, int64_t rows, int64_t k, const T* panel, T* S, int64_t ldx = -1) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>;
  if (ldx < 0) ldx = k;
  for (int64_t r0 = 0; r0 < rows; r0 += RB) {
    const T* x[RB];
    for (int r = 0; r < RB; ++r) x[r] = X + std::min<int64_t>(r0 + r, rows - 1) * ldx;
    V acc[RB][NV];
    for (int r = 0; r < RB; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    for (int64_t c = 0; c < k; ++c) {
      V p[NV];
      for (int v = 0; v < NV; ++v) p[v] = simd::load(panel + c * tj + v * W);
      for (int r = 0; r < RB; ++r) {
        const T xs = x[r][c];
        for (int v = 0; v < NV; ++v) acc[r][v] += p[v] * xs;
      }
    }
    for (int r = 0; r < RB && r0 + r < rows; ++r) {
      T* out = S + (r0 + r) * tj;
      for (int v = 0; v < NV; ++v) simd::store(out + v * W, Accumulate ? simd::load(out + v * W) + acc[r][v] : acc[r][v]);
    }
  }
}

// out[r][c] += sum_j K[r][j] * Z[j][c] for r < rows, c < kp (Z packed by pack_rows: TJ x kp, kp a
// multiple of W), vectorized over c with RB x QV accumulators in registers; out is double, or T for
// callers that add it into double themselves every few tiles.
template <typename T, int QV, typename Out>
inline void contract_block(const T* K, int64_t r0, int64_t rows, const T* Z, int64_t kp, int64_t c0, Out* out) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>;
  const T* k[RB];
  for (int r = 0; r < RB; ++r) k[r] = K + std::min<int64_t>(r0 + r, rows - 1) * tj;
  V acc[RB][QV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < QV; ++v) acc[r][v] = V{};
  for (int64_t j = 0; j < tj; ++j) {
    V z[QV];
    for (int v = 0; v < QV; ++v) z[v] = simd::load(Z + j * kp + c0 + v * W);
    for (int r = 0; r < RB; ++r) {
      const T ks = k[r][j];
      for (int v = 0; v < QV; ++v) acc[r][v] += z[v] * ks;
    }
  }
  for (int r = 0; r < RB && r0 + r < rows; ++r) {
    Out* o = out + (r0 + r) * kp + c0;
    for (int v = 0; v < QV; ++v) {
      if constexpr (std::is_same<Out, T>::value) {
        simd::store(o + v * W, simd::load(o + v * W) + acc[r][v]);
      } else {
        for (int l = 0; l < W; ++l) o[v * W + l] += static_cast<Out>(acc[r][v][l]);
      }
    }
  }
}

template <typename T, typename Out>
void contract_wide(const T* K, int64_t rows, const T* Z, int64_t kp, Out* out) {
  constexpr int W = Lanes<T>::W;
  for (int64_t r0 = 0; r0 < rows; r0 += RB) {
    int64_t c0 = 0;
    for (; c0 + 4 * W <= kp; c0 += 4 * W) contract_block<T, 4>(K, r0, rows, Z, kp, c0, out);
    const int64_t rest = (kp - c0) / W;
    if (rest == 3) contract_block<T, 3>(K, r0, rows, Z, kp, c0, out);
    if (rest == 2) contract_block<T, 2>(K, r0, rows, Z, kp, c0, out);
    if (rest == 1) contract_block<T, 1>(K, r0, rows, Z, kp, c0, out);
  }
}

// out[e] += acc[e] for e < n, then acc = 0 (acc 64-byte aligned, n a multiple of W).
template <typename T>
void flush_wide(T* acc, int64_t n, double* out) {
  constexpr int W = Lanes<T>::W;
  for (int64_t e = 0; e < n; e += W) {
    simd::add_to(out + e, simd::load(acc + e));
    simd::store(acc + e, Vec<T>{});
  }
}

// acc[r][c] += K[r][:] * panel[c][:] lane-wise for r < rows, c < k (panel k x TJ as from
// pack_transposed): the narrow contraction, whose lanes are summed later by flush_narrow.
template <typename T>
void contract_narrow(const T* K, int64_t rows, const T* panel, int64_t k, T* acc) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>;
  for (int64_t r = 0; r < rows; ++r) {
    V kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = simd::load(K + r * tj + v * W);
    for (int64_t c = 0; c < k; ++c) {
      V a = simd::load(acc + (r * k + c) * W);
      for (int v = 0; v < NV; ++v) a += kv[v] * simd::load(panel + c * tj + v * W);
      simd::store(acc + (r * k + c) * W, a);
    }
  }
}

// out[r][c] += the lanes of acc[r][c], then acc = 0.
template <typename T>
void flush_narrow(T* acc, int64_t rows, int64_t k, double* out) {
  constexpr int W = Lanes<T>::W;
  for (int64_t e = 0; e < rows * k; ++e) {
    out[e] += simd::hsum<T>(simd::load(acc + e * W));
    simd::store(acc + e * W, Vec<T>{});
  }
}

}  // namespace tiles
}  // namespace implicitdiv

// Pairwise squared distances of one tile, the building block of the tiled pairwise engine.
#pragma once
#include <cstdint>

namespace implicitdiv {

// out[i * m + j] = sum_k (x[i * d + k] - y[j * d + k])^2 for row-major x (n, d), y (m, d).
template <typename T>
void squared_distances_tile(const T* x, const T* y, T* out, int64_t n, int64_t m, int64_t d) {
  for (int64_t i = 0; i < n; ++i) {
    const T* xi = x + i * d;
    for (int64_t j = 0; j < m; ++j) {
      const T* yj = y + j * d;
      T s = 0;
      for (int64_t k = 0; k < d; ++k) {
        const T diff = xi[k] - yj[k];
        s += diff * diff;
      }
      out[i * m + j] = s;
    }
  }
}

}  // namespace implicitdiv

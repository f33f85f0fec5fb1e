// Point sets as the engine's kernel sums read them, and the chain rule back to the points.
//
// Distance kernels: features f = x - c and terms t = ||f||^2 (c, in double, the mean of the finite
// rows of both sets: distances are unchanged and the norms stay small, which keeps the rounding of
// ||f_i||^2 + ||f_j||^2 - 2 f_i.f_j small); then, with G_ij = dL/ds_ij,
//   grad x_i = 2 (f_i sum_j G_ij - sum_j G_ij f_j) + 2 sum_{near j} G_ij (x_i - y_j).
// Linear kernel: f = x, no terms; grad x_i = sum_j G_ij y_j.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "pairwise_tiles.h"

namespace implicitdiv {

// A shared center of two point sets, and whether every row was finite.
struct Center {
  std::vector<double> c;
  bool finite;
};

// Mean over the rows of the given (rows, d) sets whose entries are all finite (0 if there are
// none), and whether all rows were.
template <typename T>
Center finite_center(const T* a, int64_t na, const T* b, int64_t nb, int64_t d) {
  std::vector<double> c(d, 0.0);
  int64_t count = 0;
  auto add = [&](const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const T* row = x + i * d;
      bool finite = true;
      for (int64_t k = 0; k < d; ++k) finite = finite && std::isfinite(static_cast<double>(row[k]));
      if (!finite) continue;
      for (int64_t k = 0; k < d; ++k) c[k] += row[k];
      ++count;
    }
  };
  add(a, na);
  if (b) add(b, nb);
  if (count > 0)
    for (double& v : c) v /= static_cast<double>(count);
  return Center{c, count == na + (b ? nb : 0)};
}

template <typename T>
struct Points {
  const T* x;  // (n, d) as given
  int64_t n, d;
  bool distance;
  tiles::Buffer<T> feat, term;  // centered rows and their squared norms (distance kernels)

  Points(const T* x_, int64_t n_, int64_t d_, bool distance_, const std::vector<double>& center)
      : x(x_), n(n_), d(d_), distance(distance_) {
    if (!distance) return;
    feat.resize(n * d);
    term.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      double norm = 0.0;
      for (int64_t k = 0; k < d; ++k) {
        const T f = static_cast<T>(static_cast<double>(x[i * d + k]) - center[k]);
        feat.get()[i * d + k] = f;
        norm += static_cast<double>(f) * static_cast<double>(f);
      }
      term.get()[i] = static_cast<T>(norm);
    }
  }

  const T* features() const { return distance ? feat.get() : x; }
  const T* terms() const { return distance ? term.get() : nullptr; }
  const T* coordinates() const { return distance ? x : nullptr; }

  // grad x (n, d) = factor * the chain rule above, from the row pass's sums (see RowGrads; direct
  // may be null when the near pairs' terms are already in gf, negated, as in ColGrads): written
  // (rounded to T) into out, or added into the double accumulator acc.
  double chain(const double* gf, const double* rowsum, const double* direct, int64_t i, int64_t k) const {
    const int64_t e = i * d + k;
    const double near = direct ? direct[e] : 0.0;
    return distance ? 2.0 * (static_cast<double>(feat.get()[e]) * rowsum[i] - gf[e] + near) : gf[e];
  }
  void gradient(const double* gf, const double* rowsum, const double* direct, double factor, T* out) const {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) out[i * d + k] = static_cast<T>(factor * chain(gf, rowsum, direct, i, k));
  }
  void add_gradient(const double* gf, const double* rowsum, const double* direct, double factor, double* acc) const {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) acc[i * d + k] += factor * chain(gf, rowsum, direct, i, k);
  }
};

}  // namespace implicitdiv

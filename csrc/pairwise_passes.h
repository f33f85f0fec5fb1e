// Whole passes of the pairwise engine over one batch element's point sets, as the bindings run
// them: the weighted sum alone, and the training pass (the sum and its gradients for an upstream
// gradient of 1, pairwise_fused.h). Gradients are added into double accumulators, so several passes
// over the same points (the three sums of an MMD^2) add up before one rounding to the input type.
//
// The NaN rule of the public functions lives here too: a batch element whose points or weights
// hold a NaN or an Inf gets NaN, found by the pass that centers the points (or, for the kernels
// of the dot product, which are not centered, by a scan of the same length).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pairwise_engine.h"
#include "pairwise_fused.h"
#include "pairwise_points.h"

namespace implicitdiv {

inline engine::PassConfig sum_config(int kernel, bool sym, bool exclude_diag, int64_t d, int64_t P) {
  engine::PassConfig cfg;
  const bool dot = dot_kernel(kernel);
  cfg.score = dot ? engine::Score::dot : engine::Score::distance;
  cfg.alpha = dot ? 1.0 : -2.0;
  cfg.D = d;
  cfg.d = d;
  cfg.P = P;
  cfg.sym = sym;
  cfg.exclude_diag = exclude_diag;
  return cfg;
}

template <typename T>
engine::Side<T> side(const Points<T>& p, const T* weight) {
  engine::Side<T> s;
  s.feat = p.features();
  s.term = p.terms();
  s.orig = p.coordinates();
  s.weight = weight;
  s.n = p.n;
  return s;
}

template <typename T>
bool all_finite(const T* v, int64_t count) {
  bool finite = true;
  for (int64_t i = 0; i < count; ++i) finite &= std::isfinite(v[i]);
  return finite;
}

// The point sets of one batch element (y null for a symmetric sum), centered together for the
// distance kernels, and whether every coordinate is finite.
template <typename T>
struct PointPair {
  Center center;
  Points<T> x, y;
  PointPair(const engine::PassConfig& cfg, const T* xb, int64_t n, const T* yb, int64_t m)
      : center(make_center(cfg, xb, n, yb, m)),
        x(xb, n, cfg.d, cfg.score == engine::Score::distance, center.c),
        y(yb ? yb : xb, yb ? m : 0, cfg.d, cfg.score == engine::Score::distance && yb, center.c) {}
  static Center make_center(const engine::PassConfig& cfg, const T* xb, int64_t n, const T* yb, int64_t m) {
    if (cfg.score == engine::Score::distance) return finite_center(xb, n, yb, m, cfg.d);
    return Center{std::vector<double>(cfg.d, 0.0), all_finite(xb, n * cfg.d) && (!yb || all_finite(yb, m * cfg.d))};
  }
};

// sum_ij a_i k(s_ij) b_j over R against C (C = R for a symmetric sum), one weight column.
template <typename T>
double forward_pass(const engine::PassConfig& cfg, const KernelMap<T>& map, const engine::Side<T>& R,
                    const engine::Side<T>& C, int threads) {
  double out = 0.0;
  engine::sum_forward(cfg, map, R, C, &out, engine::workers_for(threads, R.n, C.n, cfg.d + 4));
  return out;
}

// Accumulators of the training pass's gradients, in double; null where not wanted. gy and gb stay
// unused for a symmetric sum, whose column sums belong to the rows' points.
struct GradAcc {
  double* gx = nullptr;  // (n, d)
  double* ga = nullptr;  // (n)
  double* gy = nullptr;  // (m, d)
  double* gb = nullptr;  // (m)
};

// The training pass of sum_ij a_i k(s_ij) b_j (pairwise_fused.h): returns the sum and adds
// scale times its gradients into acc. A symmetric sum's points and weights sit on both sides of
// every pair, hence its factor 2.
template <typename T>
double fused_pass(const engine::PassConfig& cfg, const KernelMap<T>& map, const Points<T>& px, const T* a,
                  const Points<T>& py, const T* b, double scale, const GradAcc& acc, int threads) {
  const int64_t n = px.n, d = cfg.d, cm = cfg.sym ? n : py.n;
  const bool want_f = acc.gx || acc.gy;
  const bool distance = cfg.score == engine::Score::distance;
  std::vector<double> gf(want_f ? n * d : 0), rowsum(want_f ? n : 0), direct(want_f ? n * d : 0), kw(n);
  std::vector<double> cgf(want_f ? cm * d : 0), colsum(want_f ? cm : 0), ckw(cm);
  const engine::Side<T> R = side(px, a);
  const engine::Side<T> C = cfg.sym ? R : side(py, b);
  engine::RowGrads ro;
  ro.gf = want_f ? gf.data() : nullptr;
  ro.rowsum = want_f ? rowsum.data() : nullptr;
  ro.direct = want_f && distance ? direct.data() : nullptr;
  ro.kw = kw.data();
  engine::ColGrads co;
  co.gf = want_f ? cgf.data() : nullptr;
  co.colsum = want_f ? colsum.data() : nullptr;
  co.kw = ckw.data();
  engine::sum_fused(cfg, map, R, C, want_f, ro, co, engine::workers_for(threads, n, cm, 3 * d + 8));
  if (cfg.sym) {
    for (int64_t i = 0; i < n; ++i) kw[i] += ckw[i];
    if (want_f) {
      for (int64_t i = 0; i < n; ++i) rowsum[i] += colsum[i];
      for (int64_t k = 0; k < n * d; ++k) gf[k] += cgf[k];
    }
  }
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(a[i]) * kw[i];
  const double factor = (cfg.sym ? 2.0 : 1.0) * scale;
  if (acc.gx) px.add_gradient(gf.data(), rowsum.data(), distance ? direct.data() : nullptr, factor, acc.gx);
  if (acc.ga)
    for (int64_t i = 0; i < n; ++i) acc.ga[i] += factor * kw[i];
  if (!cfg.sym && acc.gy) py.add_gradient(cgf.data(), colsum.data(), nullptr, scale, acc.gy);
  if (!cfg.sym && acc.gb)
    for (int64_t j = 0; j < cm; ++j) acc.gb[j] += scale * ckw[j];
  return total;
}

template <typename T>
void round_into(const std::vector<double>& src, T* out) {
  for (size_t k = 0; k < src.size(); ++k) out[k] = static_cast<T>(src[k]);
}

template <typename T>
void fill_nan(T* out, int64_t count) {
  if (out) std::fill(out, out + count, std::numeric_limits<T>::quiet_NaN());
}

}  // namespace implicitdiv

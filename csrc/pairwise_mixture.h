// The Gaussian-mixture log-density on the pairwise engine, from the raw inputs:
//
//   out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j))
//
// With c the mean of the finite component means (which leaves every density unchanged and keeps
// the features small), zc = z - c, mc = m - c and w = exp(-lv), all in double, the engine scores
//
//   f_i = [zc_i^2, zc_i],  f_j = [-w_j / 2, mc_j w_j],  t_j = -1/2 sum_k (mc_jk^2 w_jk + lv_jk + log 2 pi)
//
// in the input type and takes logsumexp_j over each row. The backward, with G_ij = g_i exp(score_ij -
// lse_i) (lse_i = out_i + log M), takes one row pass per side:
//
//   z side:          grad z_i = 2 zc_i (G F)_i[:d] + (G F)_i[d:]
//   component side:  c_j = sum_i G_ij and (G^T Z)_j = [a_j, b_j]:  grad m_j = w_j (b_j - mc_j c_j),
//                    grad lv_j = w_j a_j / 2 - mc_j w_j b_j + c_j (mc_j^2 w_j - 1) / 2
//
// The NaN rule of the public function: a row whose z holds a NaN or an Inf is NaN, and every row is
// when a component's mean or log-variance does.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pairwise_engine.h"

namespace implicitdiv {

template <typename T>
struct MixtureSides {
  int64_t n, m, d;
  std::vector<double> zc, mc, w;         // (n, d), (m, d), (m, d)
  tiles::Buffer<T> z_feat, comp_feat;    // (n, 2d), (m, 2d)
  tiles::Buffer<T> comp_term;            // (m)
  std::vector<char> z_finite;            // per row of z
  bool components_finite = true;

  MixtureSides(const T* z, const T* means, const T* logvars, int64_t n_, int64_t m_, int64_t d_)
      : n(n_), m(m_), d(d_), zc(n_ * d_), mc(m_ * d_), w(m_ * d_), z_finite(n_, 1) {
    std::vector<double> center(d, 0.0);
    int64_t count = 0;
    for (int64_t j = 0; j < m; ++j) {
      bool mean_finite = true, logvar_finite = true;
      for (int64_t k = 0; k < d; ++k) {
        mean_finite = mean_finite && std::isfinite(static_cast<double>(means[j * d + k]));
        logvar_finite = logvar_finite && std::isfinite(static_cast<double>(logvars[j * d + k]));
      }
      components_finite = components_finite && mean_finite && logvar_finite;
      if (!mean_finite) continue;
      for (int64_t k = 0; k < d; ++k) center[k] += means[j * d + k];
      ++count;
    }
    if (count > 0)
      for (double& v : center) v /= static_cast<double>(count);
    const double log_2pi = std::log(2.0 * M_PI);
    z_feat.resize(n * 2 * d);
    comp_feat.resize(m * 2 * d);
    comp_term.resize(m);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) {
        const double v = static_cast<double>(z[i * d + k]) - center[k];
        zc[i * d + k] = v;
        z_finite[i] = z_finite[i] && std::isfinite(v);
        z_feat.get()[i * 2 * d + k] = static_cast<T>(v * v);
        z_feat.get()[i * 2 * d + d + k] = static_cast<T>(v);
      }
    for (int64_t j = 0; j < m; ++j) {
      double term = 0.0;
      for (int64_t k = 0; k < d; ++k) {
        const int64_t e = j * d + k;
        const double lv = static_cast<double>(logvars[e]);
        mc[e] = static_cast<double>(means[e]) - center[k];
        w[e] = std::exp(-lv);
        comp_feat.get()[j * 2 * d + k] = static_cast<T>(-0.5 * w[e]);
        comp_feat.get()[j * 2 * d + d + k] = static_cast<T>(mc[e] * w[e]);
        term += mc[e] * mc[e] * w[e] + lv + log_2pi;
      }
      comp_term.get()[j] = static_cast<T>(-0.5 * term);
    }
  }

  engine::PassConfig config() const {
    engine::PassConfig cfg;
    cfg.score = engine::Score::mixture;
    cfg.D = 2 * d;
    return cfg;
  }
  engine::Side<T> z_side() const {
    engine::Side<T> s;
    s.feat = z_feat.get();
    s.n = n;
    return s;
  }
  engine::Side<T> component_side() const {
    engine::Side<T> s;
    s.feat = comp_feat.get();
    s.term = comp_term.get();
    s.n = m;
    return s;
  }

  // out (n) in double: the log-density of each row, NaN by the rule above.
  void forward(double* out, int threads) const {
    engine::lse_forward(config(), z_side(), component_side(), out, engine::workers_for(threads, n, m, 2 * d + 8));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t i = 0; i < n; ++i)
      if (!components_finite || !z_finite[i]) out[i] = nan;
  }

  // Gradients of <out, g> (null where not wanted); out is the forward's result in T.
  void backward(const T* out, const T* g, T* gz, T* gm, T* glv, int threads) const {
    const double log_m = std::log(static_cast<double>(m));
    tiles::Buffer<T> lse(n);
    for (int64_t i = 0; i < n; ++i) lse.get()[i] = static_cast<T>(static_cast<double>(out[i]) + log_m);
    const int workers = engine::workers_for(threads, n, m, 4 * d + 8);
    const engine::PassConfig cfg = config();
    if (gz) {
      engine::Side<T> R = z_side(), C = component_side();
      R.lse = lse.get();
      R.grad = g;
      std::vector<double> gf(n * 2 * d, 0.0);
      engine::RowGrads rows;
      rows.gf = gf.data();
      engine::rows_backward<T>(cfg, nullptr, R, C, true, rows, workers);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < d; ++k)
          gz[i * d + k] = static_cast<T>(2.0 * zc[i * d + k] * gf[i * 2 * d + k] + gf[i * 2 * d + d + k]);
    }
    if (gm || glv) {
      engine::Side<T> R = component_side(), C = z_side();
      C.lse = lse.get();
      C.grad = g;
      std::vector<double> gf(m * 2 * d, 0.0), colsum(m, 0.0);
      engine::RowGrads rows;
      rows.gf = gf.data();
      rows.rowsum = colsum.data();
      engine::rows_backward<T>(cfg, nullptr, R, C, false, rows, workers);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t k = 0; k < d; ++k) {
          const int64_t e = j * d + k;
          const double a = gf[j * 2 * d + k], b = gf[j * 2 * d + d + k], c = colsum[j];
          if (gm) gm[e] = static_cast<T>(w[e] * (b - mc[e] * c));
          if (glv) glv[e] = static_cast<T>(0.5 * w[e] * a - mc[e] * w[e] * b + c * (0.5 * mc[e] * mc[e] * w[e] - 0.5));
        }
    }
  }
};

}  // namespace implicitdiv

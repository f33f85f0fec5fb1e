// The tiled pairwise engine: for rows i and columns j of two point sets, a pair's score is
//
//   score_ij = alpha * <f_i, f_j> + t_i + t_j
//
// (a short dot product of feature vectors plus per-row and per-column terms), then a map, then a
// reduction over j that never stores the N x M matrix:
//
//   distance kernels: f = centered points, t = squared norms, alpha = -2, so score = ||x_i - y_j||^2,
//                     map = the kernel k; reduction sum_j k_ij w_jp (P weight columns)
//   dot kernels:      f = points, no terms, alpha = 1, map = the kernel (identity for linear,
//                     (gamma s + c0)^p for polynomial)
//   mixture:          f_i = [z_i^2, z_i], f_j = [-exp(-lv_j)/2, m_j exp(-lv_j)],
//                     t_j = -1/2 sum(m_j^2 exp(-lv_j) + lv_j + log 2 pi): score = log N(z_i; m_j, exp(lv_j));
//                     reduction logsumexp_j
//
// Work is split by row tiles; each row tile walks the column tiles in order and writes only its
// own rows (or its own partial sum, combined in tile order), so results do not depend on the
// number of threads. Distances lose precision through ||x||^2 + ||y||^2 - 2 x.y when the pair is
// close relative to its norms: those score vectors are recomputed from explicit differences of the
// original coordinates (exact for i == j), and in backward their gradients are taken directly.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "pairwise_maps.h"
#include "pairwise_simd.h"
#include "threads.h"
#include "pairwise_tiles.h"

namespace implicitdiv {
namespace engine {

using simd::Lanes;
using simd::Vec;
using tiles::Buffer;
using tiles::NV;
using tiles::TJ;

enum class Score { distance, dot, mixture };

// A pair is "near" when score < kNear * (t_i + t_j): then the rounding of the dot-product form,
// about eps * (t_i + t_j), would be a large part of it, so score_tile (every pass over distance
// scores) recomputes it from differences. Why Triton's threshold differs, and who relies on both:
// NEAR_FRACTION in implicitdiv/fused/triton/pairwise.py. Bound as _C.pairwise_near_fraction().
constexpr double kNear = 1.0 / 16.0;
// Lane accumulators are emptied into double accumulators every this many column tiles.
constexpr int64_t kFlushEvery = 16;

// One point set of one batch element. Rows are read in place; columns are packed (Columns).
template <typename T>
struct Side {
  const T* feat = nullptr;    // (n, D) features entering the dot product
  const T* term = nullptr;    // (n) additive term, or null for none
  const T* orig = nullptr;    // (n, d) original coordinates (distance score only)
  const T* weight = nullptr;  // (n, P) weights, or null
  const T* lse = nullptr;     // (n) mixture backward, z side: logsumexp of the row
  const T* grad = nullptr;    // (n) mixture backward, z side: upstream gradient of the row
  int64_t n = 0;
};

// What one pass over the pairs computes: the score, its lengths and scale, the weight columns
// reduced against, and whether the columns are the rows.
struct PassConfig {
  Score score;
  int64_t D = 0;  // feature length
  int64_t d = 0;  // coordinate length (distance score)
  int64_t P = 0;  // weight columns (0: no weights)
  double alpha = 1.0;
  bool sym = false;           // columns are the rows (one point set)
  bool exclude_diag = false;  // sym: leave out i == j
  // Features this short are contracted lane-wise over the tile's columns (contract_narrow):
  // padding them to whole vectors for contract_wide would waste most of each vector.
  bool narrow_features() const { return D < 8; }
};

// The column side packed tile by tile for the inner loops (built once per pass).
template <typename T>
struct Columns {
  int64_t n = 0, tiles = 0;
  Buffer<T> feat_t, feat_r, orig_t, term, weight_t, weight_r, lse, grad;

  Columns(const Side<T>& s, const PassConfig& cfg, bool rows_layout_features, bool weights_transposed,
          bool weights_rows) {
    const int64_t tj = TJ<T>;
    n = s.n;
    tiles = tiles::ceil_div(n, tj);
    const int64_t cols = tiles * tj;
    feat_t.resize(cols * cfg.D);
    tiles::pack_transposed(s.feat, n, cfg.D, feat_t.get());
    if (rows_layout_features) {
      feat_r.resize(cols * tiles::padded<T>(cfg.D));
      tiles::pack_rows(s.feat, n, cfg.D, feat_r.get());
    }
    if (cfg.score == Score::distance) {
      orig_t.resize(cols * cfg.d);
      tiles::pack_transposed(s.orig, n, cfg.d, orig_t.get());
    }
    term.resize(cols);
    for (int64_t j = 0; j < cols; ++j) term.get()[j] = (s.term && j < n) ? s.term[j] : T(0);
    if (weights_transposed) {
      weight_t.resize(cols * cfg.P);
      tiles::pack_transposed(s.weight, n, cfg.P, weight_t.get());
    }
    if (weights_rows) {
      weight_r.resize(cols * tiles::padded<T>(cfg.P));
      tiles::pack_rows(s.weight, n, cfg.P, weight_r.get());
    }
    if (s.lse) {
      lse.resize(cols);
      grad.resize(cols);
      for (int64_t j = 0; j < cols; ++j) {
        lse.get()[j] = j < n ? s.lse[j] : T(0);
        grad.get()[j] = j < n ? s.grad[j] : T(0);
      }
    }
  }
};

// Per-worker state, allocated by the worker itself (see PerWorker): tile buffers, accumulators
// and its own copy of the kernel map, so no cache line read in the inner loops is written by another thread.
template <typename T>
struct Scratch {
  Buffer<T> S, C, K;
  std::vector<char> flagged;  // [row][vector]: score recomputed from differences
  Buffer<double> acc_f, acc_rowsum, acc_direct, acc_w;
  Buffer<T> lanes_f, lanes_rowsum, lanes_direct, lanes_w;
  Buffer<T> columns;  // the training pass's column sums of the last few row tiles (pairwise_fused.h)
  std::unique_ptr<KernelMap<T>> map;
  Scratch() {
    const int64_t tj = TJ<T>;
    S.resize(tj * tj);
    C.resize(tj * tj);
    K.resize(tj * tj);
    flagged.assign(tj * NV, 0);
  }
  const KernelMap<T>* own(const KernelMap<T>* shared) {
    if (shared && !map) map.reset(new KernelMap<T>(*shared));
    return map.get();
  }
};

// Column validity (j < n) and, for a diagonal tile, the lanes with j == i.
template <typename T>
inline simd::Mask<T> valid_lanes(int64_t col0, int64_t v, int64_t n) {
  simd::Mask<T> m;
  for (int l = 0; l < Lanes<T>::W; ++l) m[l] = (col0 + v * Lanes<T>::W + l < n) ? -1 : 0;
  return m;
}
template <typename T>
struct ValidLanes {
  simd::Mask<T> of[NV];
  ValidLanes(int64_t col0, int64_t n) {
    for (int v = 0; v < NV; ++v) of[v] = valid_lanes<T>(col0, v, n);
  }
};
template <typename T>
inline simd::Mask<T> diagonal_lanes(int64_t row, int64_t col0, int64_t v) {
  simd::Mask<T> m;
  for (int l = 0; l < Lanes<T>::W; ++l) m[l] = (col0 + v * Lanes<T>::W + l == row) ? -1 : 0;
  return m;
}

// S <- the scores of rows [i0, i0 + rows) against column tile t. For the distance score, marks in
// sc.flagged the vectors recomputed from explicit differences (near pairs and the diagonal).
template <typename T>
void score_tile(const PassConfig& cfg, const Side<T>& R, int64_t i0, int64_t rows, const Columns<T>& C, int64_t t,
                Scratch<T>& sc) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>, col0 = t * tj;
  T* S = sc.S.get();
  tiles::dot_tile(R.feat + i0 * cfg.D, rows, cfg.D, C.feat_t.get() + t * cfg.D * tj, S);
  const T* cterm = C.term.get() + col0;
  const T alpha = static_cast<T>(cfg.alpha);
  const bool diagonal_tile = cfg.sym && col0 == i0;
  for (int64_t r = 0; r < rows; ++r) {
    const T rt = R.term ? R.term[i0 + r] : T(0);
    for (int v = 0; v < NV; ++v) {
      V s = simd::load(S + r * tj + v * W) * alpha + rt + simd::load(cterm + v * W);
      if (cfg.score == Score::distance) {
        s = (s < V{}) ? V{} : s;
        auto near = s < (rt + simd::load(cterm + v * W)) * static_cast<T>(kNear);
        if (diagonal_tile) near |= diagonal_lanes<T>(i0 + r, col0, v);
        const bool recompute = simd::any<T>(near);
        sc.flagged[r * NV + v] = recompute;
        if (recompute) {
          const T* xo = R.orig + (i0 + r) * cfg.d;
          const T* yo = C.orig_t.get() + t * cfg.d * tj + v * W;
          V e{};
          for (int64_t c = 0; c < cfg.d; ++c) {
            const V diff = xo[c] - simd::load(yo + c * tj);
            e += diff * diff;
          }
          s = e;
        }
      }
      simd::store(S + r * tj + v * W, s);
    }
  }
}

// ---- forward: out_p = sum_ij a_ip k(score_ij) b_jp ------------------------------------------

template <typename T>
void sum_forward(const PassConfig& cfg, const KernelMap<T>& shared_map, const Side<T>& R, const Side<T>& Cs,
                 double* out, int workers) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>, P = cfg.P, Pp = tiles::padded<T>(P);
  const bool narrow = P == 1;
  const Columns<T> C(Cs, cfg, false, narrow, !narrow);
  const int64_t row_tiles = tiles::ceil_div(R.n, tj);
  Buffer<double> partial(row_tiles * P);
  PerWorker<Scratch<T>> scratch(workers);
  parallel_items(row_tiles, workers, [&](int64_t I, int w) {
    Scratch<T>& sc = scratch[w];
    const KernelMap<T>& map = *sc.own(&shared_map);
    const int64_t i0 = I * tj, rows = std::min(tj, R.n - i0);
    Buffer<double>& T_acc = sc.acc_w;
    T_acc.resize(tj * Pp);
    T_acc.zero(tj * Pp);
    sc.lanes_w.resize(tj * W);
    T* lanes = sc.lanes_w.get();
    T* S = sc.S.get();
    const int64_t first = cfg.sym ? I : 0;
    for (int64_t t = first; t < C.tiles; ++t) {
      score_tile(cfg, R, i0, rows, C, t, sc);
      const int64_t col0 = t * tj;
      const bool diagonal_tile = cfg.sym && t == I;
      const T factor = (cfg.sym && t != I) ? T(2) : T(1);  // an off-diagonal tile stands for its mirror too
      const ValidLanes<T> valid(col0, C.n);
      for (int64_t r = 0; r < rows; ++r) {
        for (int v = 0; v < NV; ++v) {
          V k = map.value(simd::load(S + r * tj + v * W)) * factor;
          auto keep = valid.of[v];
          if (diagonal_tile && cfg.exclude_diag) keep &= ~diagonal_lanes<T>(i0 + r, col0, v);
          simd::store(S + r * tj + v * W, keep ? k : V{});
        }
      }
      if (narrow) {
        tiles::contract_narrow(S, rows, C.weight_t.get() + t * tj, 1, lanes);
        if ((t - first + 1) % kFlushEvery == 0) tiles::flush_narrow(lanes, rows, 1, T_acc.get());
      } else {
        tiles::contract_wide(S, rows, C.weight_r.get() + t * tj * Pp, Pp, T_acc.get());
      }
    }
    if (narrow) tiles::flush_narrow(lanes, rows, 1, T_acc.get());
    const int64_t ld = narrow ? 1 : Pp;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t p = 0; p < P; ++p)
        partial.get()[I * P + p] += static_cast<double>(R.weight[(i0 + r) * P + p]) * T_acc.get()[r * ld + p];
  });
  for (int64_t p = 0; p < P; ++p) out[p] = 0.0;
  for (int64_t I = 0; I < row_tiles; ++I)
    for (int64_t p = 0; p < P; ++p) out[p] += partial.get()[I * P + p];
}

// ---- forward: out_i = logsumexp_j score_ij - log M ------------------------------------------

template <typename T>
void lse_forward(const PassConfig& cfg, const Side<T>& R, const Side<T>& Cs, double* out, int workers) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>;
  const Columns<T> C(Cs, cfg, false, false, false);
  const int64_t row_tiles = tiles::ceil_div(R.n, tj);
  const double inf = std::numeric_limits<double>::infinity();
  PerWorker<Scratch<T>> scratch(workers);
  parallel_items(row_tiles, workers, [&](int64_t I, int w) {
    Scratch<T>& sc = scratch[w];
    const int64_t i0 = I * tj, rows = std::min(tj, R.n - i0);
    std::vector<double> m(rows, -inf), l(rows, 0.0);
    std::vector<char> nan(rows, 0);
    T* S = sc.S.get();
    for (int64_t t = 0; t < C.tiles; ++t) {
      score_tile(cfg, R, i0, rows, C, t, sc);
      const int64_t col0 = t * tj;
      const ValidLanes<T> valid(col0, C.n);
      for (int64_t r = 0; r < rows; ++r) {
        V s[NV];
        const V none = V{} - std::numeric_limits<T>::infinity();
        V mx = none;
        for (int v = 0; v < NV; ++v) {
          s[v] = simd::load(S + r * tj + v * W);
          s[v] = valid.of[v] ? s[v] : none;
          if (simd::any<T>(s[v] != s[v])) nan[r] = 1;
          mx = (s[v] > mx) ? s[v] : mx;
        }
        double tile_max = -inf;
        for (int lane = 0; lane < W; ++lane) tile_max = std::max(tile_max, static_cast<double>(mx[lane]));
        const double new_m = std::max(m[r], tile_max);
        if (new_m == -inf) continue;
        V e{};
        const T shift = static_cast<T>(new_m);
        for (int v = 0; v < NV; ++v) e += simd::vexp(s[v] - shift);
        l[r] = l[r] * std::exp(m[r] - new_m) + simd::hsum<T>(e);
        m[r] = new_m;
      }
    }
    const double log_m = std::log(static_cast<double>(C.n));
    for (int64_t r = 0; r < rows; ++r)
      out[i0 + r] = nan[r] ? std::numeric_limits<double>::quiet_NaN() : m[r] + std::log(l[r]) - log_m;
  });
}

// ---- backward over rows ---------------------------------------------------------------------
//
// With G_ij = dL/dscore_ij:
//   kernel sums:  G_ij = dk/ds(s_ij) * sum_p ag_ip b_jp   (ag = row weights times the upstream gradient)
//   mixture:      G_ij = g_i exp(score_ij - lse_i)          (i the z side, a row or a column)
// it accumulates for each row i, in double:
//   gf_i     = sum_j G_ij f_j         over pairs not recomputed from differences
//   rowsum_i = sum_j G_ij             over the same pairs
//   direct_i = sum_j G_ij (o_i - o_j) over the pairs recomputed from differences (distance score)
//   kw_i     = sum_j k_ij w_jp        (for the weight gradients)
// Outputs not wanted are null.

struct RowGrads {
  double* gf = nullptr;      // (n, D)
  double* rowsum = nullptr;  // (n)
  double* direct = nullptr;  // (n, d)
  double* kw = nullptr;      // (n, P)
};

template <typename T>
void rows_backward(const PassConfig& cfg, const KernelMap<T>* shared_map, const Side<T>& R, const Side<T>& Cs,
                   bool z_is_row, const RowGrads& out, int workers) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>, D = cfg.D, d = cfg.d, P = cfg.P;
  const int64_t Dp = tiles::padded<T>(D), Pp = tiles::padded<T>(P);
  const bool mixture = cfg.score == Score::mixture;
  const bool want_f = out.gf || out.rowsum || out.direct;
  const bool want_kw = out.kw != nullptr;
  const bool narrow_f = cfg.narrow_features();
  const bool narrow_w = P == 1;
  const Columns<T> C(Cs, cfg, want_f && !narrow_f, !mixture, !mixture && !narrow_w && want_kw);
  const int64_t row_tiles = tiles::ceil_div(R.n, tj);

  PerWorker<Scratch<T>> scratch(workers);
  parallel_items(row_tiles, workers, [&](int64_t I, int w) {
    Scratch<T>& a = scratch[w];
    Scratch<T>& sc = a;
    const KernelMap<T>* map = a.own(shared_map);
    const int64_t i0 = I * tj, rows = std::min(tj, R.n - i0);
    const int64_t gf_ld = narrow_f ? D : Dp, kw_ld = narrow_w ? 1 : Pp, dd = std::max<int64_t>(d, 1);
    a.acc_f.resize(tj * gf_ld), a.acc_f.zero(tj * gf_ld);
    a.acc_rowsum.resize(tj), a.acc_rowsum.zero(tj);
    a.acc_direct.resize(tj * dd), a.acc_direct.zero(tj * dd);
    a.acc_w.resize(tj * kw_ld), a.acc_w.zero(tj * kw_ld);
    a.lanes_f.resize(tj * D * W), a.lanes_rowsum.resize(tj * W);
    a.lanes_direct.resize(tj * dd * W), a.lanes_w.resize(tj * W);
    bool any_direct = false;
    T *S = sc.S.get(), *Cw = sc.C.get(), *K = sc.K.get();
    for (int64_t t = 0; t < C.tiles; ++t) {
      score_tile(cfg, R, i0, rows, C, t, sc);
      const int64_t col0 = t * tj;
      const bool diagonal_tile = cfg.sym && t == I;
      const ValidLanes<T> valid(col0, C.n);
      if (!mixture && !narrow_w) tiles::dot_tile(R.weight + i0 * P, rows, P, C.weight_t.get() + t * P * tj, Cw);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        V rs{};
        for (int v = 0; v < NV; ++v) {
          const V s = simd::load(S + r * tj + v * W);
          V g, k{};
          if (mixture) {
            if (z_is_row) {
              g = simd::vexp(s - R.lse[i]) * R.grad[i];
            } else {
              g = simd::vexp(s - simd::load(C.lse.get() + col0 + v * W)) * simd::load(C.grad.get() + col0 + v * W);
            }
          } else {
            const V c = narrow_w ? simd::load(C.weight_t.get() + t * tj + v * W) * R.weight[i]
                                 : simd::load(Cw + r * tj + v * W);
            g = map->derivative(s, &k) * c;
          }
          auto keep = valid.of[v];
          if (diagonal_tile && cfg.exclude_diag) keep &= ~diagonal_lanes<T>(i, col0, v);
          g = keep ? g : V{};
          k = keep ? k : V{};
          if (cfg.score == Score::distance && sc.flagged[r * NV + v]) {
            if (out.direct) {
              const T* xo = R.orig + i * d;
              const T* yo = C.orig_t.get() + t * d * tj + v * W;
              T* dl = a.lanes_direct.get() + r * d * W;
              for (int64_t c = 0; c < d; ++c)
                simd::store(dl + c * W, simd::load(dl + c * W) + g * (xo[c] - simd::load(yo + c * tj)));
              any_direct = true;
            }
            g = V{};
          }
          rs += g;
          simd::store(S + r * tj + v * W, g);
          if (want_kw) simd::store(K + r * tj + v * W, k);
        }
        if (out.rowsum) simd::store(a.lanes_rowsum.get() + r * W, simd::load(a.lanes_rowsum.get() + r * W) + rs);
      }
      if (out.gf) {
        if (narrow_f)
          tiles::contract_narrow(S, rows, C.feat_t.get() + t * D * tj, D, a.lanes_f.get());
        else
          tiles::contract_wide(S, rows, C.feat_r.get() + t * tj * Dp, Dp, a.acc_f.get());
      }
      if (want_kw) {
        if (narrow_w)
          tiles::contract_narrow(K, rows, C.weight_t.get() + t * tj, 1, a.lanes_w.get());
        else
          tiles::contract_wide(K, rows, C.weight_r.get() + t * tj * Pp, Pp, a.acc_w.get());
      }
      if ((t + 1) % kFlushEvery == 0 || t + 1 == C.tiles) {
        if (out.gf && narrow_f) tiles::flush_narrow(a.lanes_f.get(), rows, D, a.acc_f.get());
        if (out.rowsum) tiles::flush_narrow(a.lanes_rowsum.get(), rows, 1, a.acc_rowsum.get());
        if (any_direct) tiles::flush_narrow(a.lanes_direct.get(), rows, d, a.acc_direct.get());
        if (want_kw && narrow_w) tiles::flush_narrow(a.lanes_w.get(), rows, 1, a.acc_w.get());
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      if (out.gf)
        for (int64_t c = 0; c < D; ++c) out.gf[i * D + c] = a.acc_f.get()[r * gf_ld + c];
      if (out.rowsum) out.rowsum[i] = a.acc_rowsum.get()[r];
      if (out.direct)
        for (int64_t c = 0; c < d; ++c) out.direct[i * d + c] = any_direct ? a.acc_direct.get()[r * d + c] : 0.0;
      if (want_kw)
        for (int64_t p = 0; p < P; ++p) out.kw[i * P + p] = a.acc_w.get()[r * kw_ld + p];
    }
  });
}

// Workers worth starting for rows x cols pairs of k-long work each: one below ~1e6 multiply-adds.
inline int workers_for(int threads, int64_t rows, int64_t cols, int64_t k) {
  const double work = static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(k + 8);
  return work < 1e6 ? 1 : std::max(1, threads);
}

}  // namespace engine
}  // namespace implicitdiv

// The training pass of a kernel sum with one weight column: in one walk over the pairs, the sum
//
//   out = sum_ij a_i k(s_ij) b_j
//
// and its gradient with respect to every input, taken for an upstream gradient of 1 (the autograd
// backward only scales them). With G_ij = dk/ds(s_ij) a_i b_j, each pair's tile is scored and mapped
// once and then contracted both ways:
//
//   rows    (RowGrads)  gf_i = sum_j G_ij f_j, rowsum_i = sum_j G_ij, direct_i = sum_near G_ij (o_i - o_j),
//                       kw_i = sum_j k_ij b_j
//   columns (ColGrads)  cgf_j = sum_i G_ij f_i + sum_near G_ij (o_i - o_j), colsum_j = sum_i G_ij,
//                       ckw_j = sum_i a_i k_ij
//
// so the x-y pairs are scored once instead of once per side, and for a symmetric sum (y = x, b = a)
// each unordered tile pair once: an off-diagonal tile feeds its rows through the row sums and its
// columns through the column sums, a diagonal tile only its rows (it holds both orders of its pairs).
// A pass costs a dot product and two contractions per pair, against the forward-then-backward
// schedule's dot product per pair forward plus a dot product and a contraction per pair and side.
//
// Column sums collect contributions from many row tiles. Row tiles are grouped into chunks whose
// boundaries depend only on the sizes; each chunk has its own column buffer, and the buffers are
// added in chunk order, so the bits do not depend on the number of threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "pairwise_engine.h"

namespace implicitdiv {
namespace engine {

struct ColGrads {
  double* gf = nullptr;      // (m, D)
  double* colsum = nullptr;  // (m)
  double* kw = nullptr;      // (m)
};

// Chunks (column buffers) of a pass: about one per kRowTilesPerChunk row tiles (each chunk zeroes
// and adds up a buffer as long as the columns), at least kMinChunks so that a few threads share
// small passes, at most kMaxChunks and kChunkBytes in all.
constexpr int64_t kRowTilesPerChunk = 16;
constexpr int64_t kMinChunks = 4;
constexpr int64_t kMaxChunks = 16;
constexpr double kChunkBytes = 256.0 * (1 << 20);

// Chunk boundaries over row tiles, splitting the tile pairs evenly: bounds[c] .. bounds[c + 1].
inline std::vector<int64_t> chunk_bounds(int64_t row_tiles, int64_t col_tiles, bool sym, int64_t chunks) {
  auto work = [&](int64_t I) { return sym ? col_tiles - I : col_tiles; };
  double total = 0;
  for (int64_t I = 0; I < row_tiles; ++I) total += static_cast<double>(work(I));
  std::vector<int64_t> bounds{0};
  double done = 0;
  for (int64_t I = 0; I < row_tiles; ++I) {
    done += static_cast<double>(work(I));
    const int64_t c = static_cast<int64_t>(bounds.size());
    if (c < chunks && done >= total * static_cast<double>(c) / static_cast<double>(chunks) && I + 1 < row_tiles)
      bounds.push_back(I + 1);
  }
  bounds.push_back(row_tiles);
  return bounds;
}

// The pass described above (P == 1). Outputs are written in full; the row outputs of a symmetric
// sum hold only its J >= I tiles, and the caller adds the column outputs to them. want_f: point
// gradients (gf, rowsum, direct); the weight sums kw are always computed, as the sum comes from them.
template <typename T>
void sum_fused(const PassConfig& cfg, const KernelMap<T>& shared_map, const Side<T>& R, const Side<T>& Cs, bool want_f,
               const RowGrads& rows_out, const ColGrads& cols_out, int workers) {
  typedef Vec<T> V;
  constexpr int W = Lanes<T>::W;
  const int64_t tj = TJ<T>, D = cfg.D, d = cfg.d, Dp = tiles::padded<T>(D), K = D + 2;
  const bool narrow_f = cfg.narrow_features();
  const Columns<T> C(Cs, cfg, want_f && !narrow_f, true, false);
  std::unique_ptr<Columns<T>> row_pack;
  if (!cfg.sym) row_pack.reset(new Columns<T>(R, cfg, false, true, false));
  const Columns<T>& RP = cfg.sym ? C : *row_pack;
  const int64_t row_tiles = tiles::ceil_div(R.n, tj);
  const double chunk_bytes = static_cast<double>(C.tiles * K * tj) * (sizeof(double) + sizeof(T));
  const int64_t wanted = std::max(kMinChunks, tiles::ceil_div(row_tiles, kRowTilesPerChunk));
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>({wanted, kMaxChunks, row_tiles, static_cast<int64_t>(kChunkBytes / chunk_bytes)}));
  const std::vector<int64_t> bounds = chunk_bounds(row_tiles, C.tiles, cfg.sym, chunks);
  const int64_t n_chunks = static_cast<int64_t>(bounds.size()) - 1;
  // chunk c holds column tiles first_tile(c) .. C.tiles - 1, each as K rows of TJ: [t][k][j]
  auto first_tile = [&](int64_t c) { return cfg.sym ? bounds[c] : int64_t(0); };
  std::vector<Buffer<double>> col_buf(n_chunks);

  PerWorker<Scratch<T>> scratch(workers);
  parallel_items(n_chunks, workers, [&](int64_t chunk, int w) {
    Scratch<T>& sc = scratch[w];
    const KernelMap<T>& map = *sc.own(&shared_map);
    const int64_t t_first = first_tile(chunk), col_len = (C.tiles - t_first) * K * tj;
    // column sums of the last few row tiles in T, added into the chunk's double buffer every
    // kFlushEvery row tiles and at the chunk's end (which leaves them zero for the next chunk)
    Buffer<T>& col_t = sc.columns;
    col_t.resize(col_len);
    col_buf[chunk].resize(col_len);
    const int64_t gf_ld = narrow_f ? D : Dp, dd = std::max<int64_t>(d, 1);
    T* S = sc.S.get();
    for (int64_t I = bounds[chunk]; I < bounds[chunk + 1]; ++I) {
      const int64_t i0 = I * tj, rows = std::min(tj, R.n - i0);
      sc.acc_f.resize(tj * gf_ld), sc.acc_f.zero(tj * gf_ld);
      sc.acc_rowsum.resize(tj), sc.acc_rowsum.zero(tj);
      sc.acc_direct.resize(tj * dd), sc.acc_direct.zero(tj * dd);
      sc.acc_w.resize(tj), sc.acc_w.zero(tj);
      sc.lanes_f.resize(tj * std::max(D * W, gf_ld)), sc.lanes_rowsum.resize(tj * W);
      sc.lanes_direct.resize(tj * dd * W), sc.lanes_w.resize(tj * W);
      bool any_direct = false;
      const int64_t first = cfg.sym ? I : 0;
      for (int64_t t = first; t < C.tiles; ++t) {
        score_tile(cfg, R, i0, rows, C, t, sc);
        const int64_t col0 = t * tj;
        const bool diagonal_tile = cfg.sym && t == I;
        T* col = col_t.get() + (t - t_first) * K * tj;  // [k][j]
        const ValidLanes<T> valid(col0, C.n);
        V colsum[NV] = {}, colkw[NV] = {}, wcol[NV];
        for (int v = 0; v < NV; ++v) wcol[v] = simd::load(C.weight_t.get() + col0 + v * W);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          const T ai = R.weight[i];
          V rs{}, rkw{};
          for (int v = 0; v < NV; ++v) {
            V k;
            V g = map.derivative(simd::load(S + r * tj + v * W), &k) * (wcol[v] * ai);
            auto keep = valid.of[v];
            if (diagonal_tile && cfg.exclude_diag) keep &= ~diagonal_lanes<T>(i, col0, v);
            g = keep ? g : V{};
            k = keep ? k : V{};
            if (cfg.score == Score::distance && sc.flagged[r * NV + v]) {
              if (want_f) {
                const T* xo = R.orig + i * d;
                const T* yo = C.orig_t.get() + t * d * tj + v * W;
                T* dl = sc.lanes_direct.get() + r * d * W;
                for (int64_t c = 0; c < d; ++c) {
                  const V term = g * (xo[c] - simd::load(yo + c * tj));
                  simd::store(dl + c * W, simd::load(dl + c * W) + term);
                  if (!diagonal_tile) simd::store(col + c * tj + v * W, simd::load(col + c * tj + v * W) + term);
                }
                any_direct = true;
              }
              g = V{};
            }
            rs += g;
            rkw += k * wcol[v];
            colsum[v] += g;
            colkw[v] += k * ai;
            simd::store(S + r * tj + v * W, g);
          }
          simd::store(sc.lanes_rowsum.get() + r * W, simd::load(sc.lanes_rowsum.get() + r * W) + rs);
          simd::store(sc.lanes_w.get() + r * W, simd::load(sc.lanes_w.get() + r * W) + rkw);
        }
        if (want_f) {
          if (narrow_f)
            tiles::contract_narrow(S, rows, C.feat_t.get() + t * D * tj, D, sc.lanes_f.get());
          else
            tiles::contract_wide(S, rows, C.feat_r.get() + t * tj * Dp, Dp, sc.lanes_f.get());
        }
        if (!diagonal_tile) {
          if (want_f) tiles::dot_tile<T, true>(RP.feat_t.get() + I * D * tj, D, rows, S, col, tj);
          for (int v = 0; v < NV; ++v) {
            simd::store(col + D * tj + v * W, simd::load(col + D * tj + v * W) + colsum[v]);
            simd::store(col + (D + 1) * tj + v * W, simd::load(col + (D + 1) * tj + v * W) + colkw[v]);
          }
        }
        if ((t - first + 1) % kFlushEvery == 0 || t + 1 == C.tiles) {
          if (want_f) {
            if (narrow_f)
              tiles::flush_narrow(sc.lanes_f.get(), rows, D, sc.acc_f.get());
            else
              tiles::flush_wide(sc.lanes_f.get(), rows * Dp, sc.acc_f.get());
          }
          tiles::flush_narrow(sc.lanes_rowsum.get(), rows, 1, sc.acc_rowsum.get());
          if (any_direct) tiles::flush_narrow(sc.lanes_direct.get(), rows, d, sc.acc_direct.get());
          tiles::flush_narrow(sc.lanes_w.get(), rows, 1, sc.acc_w.get());
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        if (want_f) {
          for (int64_t c = 0; c < D; ++c) rows_out.gf[i * D + c] = sc.acc_f.get()[r * gf_ld + c];
          rows_out.rowsum[i] = sc.acc_rowsum.get()[r];
          if (rows_out.direct)
            for (int64_t c = 0; c < d; ++c) rows_out.direct[i * d + c] = any_direct ? sc.acc_direct.get()[r * d + c] : 0.0;
        }
        rows_out.kw[i] = sc.acc_w.get()[r];
      }
      if ((I - bounds[chunk] + 1) % kFlushEvery == 0 || I + 1 == bounds[chunk + 1])
        tiles::flush_wide(col_t.get(), col_len, col_buf[chunk].get());
    }
  });

  // column outputs: each column tile sums the chunks' buffers in chunk order
  parallel_items(C.tiles, workers, [&](int64_t t, int) {
    const int64_t col0 = t * tj, cols = std::min(tj, C.n - col0);
    std::vector<double> sum(K * tj, 0.0);
    for (int64_t c = 0; c < n_chunks; ++c) {
      if (t < first_tile(c)) continue;
      const double* src = col_buf[c].get() + (t - first_tile(c)) * K * tj;
      for (int64_t e = 0; e < K * tj; ++e) sum[e] += src[e];
    }
    for (int64_t j = 0; j < cols; ++j) {
      if (want_f) {
        for (int64_t c = 0; c < D; ++c) cols_out.gf[(col0 + j) * D + c] = sum[c * tj + j];
        cols_out.colsum[col0 + j] = sum[D * tj + j];
      }
      cols_out.kw[col0 + j] = sum[(D + 1) * tj + j];
    }
  });
}

}  // namespace engine
}  // namespace implicitdiv

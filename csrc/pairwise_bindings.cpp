// implicitdiv._C routines of the tiled pairwise engine (pairwise_engine.h), over raw buffers.
// Every buffer is contiguous; an address of 0 means "absent". Buffers of a batch of B elements
// hold them one after the other. Outputs are float64 whatever the input dtype.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "buffers.h"
#include "pairwise_engine.h"
#include "pairwise_fused.h"
#include "pairwise_points.h"

namespace py = pybind11;

namespace implicitdiv {

namespace {

using engine::Score;
using engine::Shape;
using engine::Side;

template <typename T>
const T* at(std::uintptr_t address, int64_t offset) {
  return address ? ptr<const T>(address) + offset : nullptr;
}
inline double* at_out(std::uintptr_t address, int64_t offset) {
  return address ? ptr<double>(address) + offset : nullptr;
}

void check_sizes(int64_t batch, int64_t n, int64_t m, int64_t D) {
  if (batch < 1 || n < 1 || m < 1 || D < 1) throw std::invalid_argument("batch, n, m and the feature length must be >= 1");
}

Shape sum_shape(int kernel, bool sym, bool exclude_diag, int64_t d, int64_t P) {
  Shape sh;
  const bool linear = kernel == static_cast<int>(Kernel::linear);
  sh.score = linear ? Score::dot : Score::distance;
  sh.alpha = linear ? 1.0 : -2.0;
  sh.D = d;
  sh.d = d;
  sh.P = P;
  sh.sym = sym;
  sh.exclude_diag = exclude_diag;
  return sh;
}

template <typename T>
Side<T> side(const Points<T>& p, const T* weight) {
  Side<T> s;
  s.feat = p.features();
  s.term = p.terms();
  s.orig = p.coordinates();
  s.weight = weight;
  s.n = p.n;
  return s;
}

// The two point sets of batch element b (y absent when sym), centered together.
template <typename T>
struct PointPair {
  Points<T> x, y;
  PointPair(const Shape& sh, const T* xb, int64_t n, const T* yb, int64_t m)
      : x(xb, n, sh.d, sh.score == Score::distance, center(sh, xb, n, yb, m)),
        y(yb ? yb : xb, yb ? m : 0, sh.d, sh.score == Score::distance && yb, center(sh, xb, n, yb, m)) {}
  static std::vector<double> center(const Shape& sh, const T* xb, int64_t n, const T* yb, int64_t m) {
    if (sh.score != Score::distance) return std::vector<double>(sh.d, 0.0);
    return finite_center(xb, n, yb, m, sh.d);
  }
};

template <typename T>
void sum_forward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag, int64_t batch,
                   int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t a, std::uintptr_t y,
                   std::uintptr_t b, std::uintptr_t out, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const Shape sh = sum_shape(kernel, sym, exclude_diag, d, P);
  const int workers = engine::workers_for(threads, n, m, d + 4 * P);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(sh, at<T>(x, e * n * d), n, sym ? nullptr : at<T>(y, e * m * d), m);
    const Side<T> R = side(pts.x, at<T>(a, e * n * P));
    const Side<T> C = sym ? R : side(pts.y, at<T>(b, e * m * P));
    engine::sum_forward(sh, map, R, C, at_out(out, e * P), workers);
  }
}

// Gradients for the rows' points x and weights a of <out, g>, times factor (2 for the symmetric
// sum, whose points and weights sit on both sides of each pair).
template <typename T>
void sum_rows_backward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag,
                         int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t a,
                         std::uintptr_t y, std::uintptr_t b, std::uintptr_t g, double factor, std::uintptr_t gx,
                         std::uintptr_t ga, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const Shape sh = sum_shape(kernel, sym, exclude_diag, d, P);
  const int workers = engine::workers_for(threads, n, m, 2 * d + 4 * P);
  std::vector<double> gf(gx ? n * d : 0), rowsum(gx ? n : 0), direct(gx ? n * d : 0), kw(ga ? n * P : 0);
  tiles::Buffer<T> ag(n * P);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(sh, at<T>(x, e * n * d), n, sym ? nullptr : at<T>(y, e * m * d), m);
    const T* ae = at<T>(a, e * n * P);
    const T* ge = at<T>(g, e * P);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < P; ++p) ag.get()[i * P + p] = ae[i * P + p] * ge[p];
    const Side<T> R = side(pts.x, static_cast<const T*>(ag.get()));
    const Side<T> C = sym ? side(pts.x, ae) : side(pts.y, at<T>(b, e * m * P));
    std::fill(direct.begin(), direct.end(), 0.0);
    engine::RowGrads<T> out;
    out.gf = gx ? gf.data() : nullptr;
    out.rowsum = gx ? rowsum.data() : nullptr;
    out.direct = gx && sh.score == Score::distance ? direct.data() : nullptr;
    out.kw = ga ? kw.data() : nullptr;
    engine::rows_backward(sh, &map, R, C, true, out, workers);
    if (gx) pts.x.gradient(gf.data(), rowsum.data(), direct.data(), factor, ptr<T>(gx) + e * n * d);
    if (ga) {
      T* gae = ptr<T>(ga) + e * n * P;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < P; ++p) gae[i * P + p] = static_cast<T>(factor * static_cast<double>(ge[p]) * kw[i * P + p]);
    }
  }
}

// The training pass (pairwise_fused.h), one weight column: out (B) and the gradients of out for an
// upstream gradient of 1, gx, ga and, unless sym, gy, gb (0: not wanted). For a symmetric sum the row
// and column sums belong to the same points and add up; its points sit on both sides, hence 2.
template <typename T>
void sum_fused_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag, int64_t batch,
                 int64_t n, int64_t m, int64_t d, std::uintptr_t x, std::uintptr_t a, std::uintptr_t y,
                 std::uintptr_t b, std::uintptr_t out, std::uintptr_t gx, std::uintptr_t ga, std::uintptr_t gy,
                 std::uintptr_t gb, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const Shape sh = sum_shape(kernel, sym, exclude_diag, d, 1);
  const int workers = engine::workers_for(threads, n, m, 3 * d + 8);
  const bool want_f = gx || gy;
  const int64_t cm = sym ? n : m;
  std::vector<double> gf(want_f ? n * d : 0), rowsum(want_f ? n : 0), direct(want_f ? n * d : 0), kw(n);
  std::vector<double> cgf(want_f ? cm * d : 0), colsum(want_f ? cm : 0), ckw(cm);
  const double factor = sym ? 2.0 : 1.0;
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(sh, at<T>(x, e * n * d), n, sym ? nullptr : at<T>(y, e * m * d), m);
    const T* ae = at<T>(a, e * n);
    const Side<T> R = side(pts.x, ae);
    const Side<T> C = sym ? R : side(pts.y, at<T>(b, e * m));
    const bool distance = sh.score == Score::distance;
    engine::RowGrads<T> ro;
    ro.gf = want_f ? gf.data() : nullptr;
    ro.rowsum = want_f ? rowsum.data() : nullptr;
    ro.direct = want_f && distance ? direct.data() : nullptr;
    ro.kw = kw.data();
    engine::ColGrads co;
    co.gf = want_f ? cgf.data() : nullptr;
    co.colsum = want_f ? colsum.data() : nullptr;
    co.kw = ckw.data();
    engine::sum_fused(sh, map, R, C, want_f, ro, co, workers);
    if (sym) {
      for (int64_t i = 0; i < n; ++i) kw[i] += ckw[i];
      if (want_f) {
        for (int64_t i = 0; i < n; ++i) rowsum[i] += colsum[i];
        for (int64_t k = 0; k < n * d; ++k) gf[k] += cgf[k];
      }
    }
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += static_cast<double>(ae[i]) * kw[i];
    ptr<double>(out)[e] = total;
    if (gx) pts.x.gradient(gf.data(), rowsum.data(), distance ? direct.data() : nullptr, factor, ptr<T>(gx) + e * n * d);
    if (ga)
      for (int64_t i = 0; i < n; ++i) ptr<T>(ga)[e * n + i] = static_cast<T>(factor * kw[i]);
    if (!sym && gy) pts.y.gradient(cgf.data(), colsum.data(), nullptr, 1.0, ptr<T>(gy) + e * m * d);
    if (!sym && gb)
      for (int64_t j = 0; j < m; ++j) ptr<T>(gb)[e * m + j] = static_cast<T>(ckw[j]);
  }
}

template <typename T>
void mixture_forward_t(int64_t n, int64_t m, int64_t D, std::uintptr_t z_feat, std::uintptr_t comp_feat,
                       std::uintptr_t comp_term, std::uintptr_t out, int threads) {
  Shape sh;
  sh.score = Score::mixture;
  sh.D = D;
  Side<T> R, C;
  R.feat = at<T>(z_feat, 0);
  R.n = n;
  C.feat = at<T>(comp_feat, 0);
  C.term = at<T>(comp_term, 0);
  C.n = m;
  engine::lse_forward(sh, R, C, at_out(out, 0), engine::workers_for(threads, n, m, D + 8));
}

template <typename T>
void mixture_rows_backward_t(bool z_is_row, int64_t n, int64_t m, int64_t D, std::uintptr_t row_feat,
                             std::uintptr_t row_term, std::uintptr_t col_feat, std::uintptr_t col_term,
                             std::uintptr_t z_lse, std::uintptr_t z_grad, std::uintptr_t gf, std::uintptr_t rowsum,
                             int threads) {
  Shape sh;
  sh.score = Score::mixture;
  sh.D = D;
  Side<T> R, C;
  R.feat = at<T>(row_feat, 0);
  R.term = at<T>(row_term, 0);
  R.n = n;
  C.feat = at<T>(col_feat, 0);
  C.term = at<T>(col_term, 0);
  C.n = m;
  Side<T>& z = z_is_row ? R : C;
  z.lse = at<T>(z_lse, 0);
  z.grad = at<T>(z_grad, 0);
  engine::RowGrads<T> g;
  g.gf = at_out(gf, 0);
  g.rowsum = at_out(rowsum, 0);
  engine::rows_backward<T>(sh, nullptr, R, C, z_is_row, g, engine::workers_for(threads, n, m, 2 * D + 8));
}

void sum_forward(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
                 int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t a,
                 std::uintptr_t y, std::uintptr_t b, std::uintptr_t out, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_forward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, a, y, b, out, threads);
  else
    sum_forward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, a, y, b, out, threads);
}

void sum_rows_backward(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
                       int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t a,
                       std::uintptr_t y, std::uintptr_t b, std::uintptr_t g, double factor, std::uintptr_t gx,
                       std::uintptr_t ga, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_rows_backward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, a, y, b, g, factor, gx,
                                ga, threads);
  else
    sum_rows_backward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, a, y, b, g, factor, gx, ga,
                               threads);
}

void sum_fused(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
               int64_t batch, int64_t n, int64_t m, int64_t d, std::uintptr_t x, std::uintptr_t a, std::uintptr_t y,
               std::uintptr_t b, std::uintptr_t out, std::uintptr_t gx, std::uintptr_t ga, std::uintptr_t gy,
               std::uintptr_t gb, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_fused_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, x, a, y, b, out, gx, ga, gy, gb, threads);
  else
    sum_fused_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, x, a, y, b, out, gx, ga, gy, gb, threads);
}

void mixture_forward(bool is_double, int64_t n, int64_t m, int64_t D, std::uintptr_t z_feat, std::uintptr_t comp_feat,
                     std::uintptr_t comp_term, std::uintptr_t out, int threads) {
  check_sizes(1, n, m, D);
  py::gil_scoped_release release;
  if (is_double)
    mixture_forward_t<double>(n, m, D, z_feat, comp_feat, comp_term, out, threads);
  else
    mixture_forward_t<float>(n, m, D, z_feat, comp_feat, comp_term, out, threads);
}

void mixture_rows_backward(bool is_double, bool z_is_row, int64_t n, int64_t m, int64_t D, std::uintptr_t row_feat,
                           std::uintptr_t row_term, std::uintptr_t col_feat, std::uintptr_t col_term,
                           std::uintptr_t z_lse, std::uintptr_t z_grad, std::uintptr_t gf, std::uintptr_t rowsum,
                           int threads) {
  check_sizes(1, n, m, D);
  py::gil_scoped_release release;
  if (is_double)
    mixture_rows_backward_t<double>(z_is_row, n, m, D, row_feat, row_term, col_feat, col_term, z_lse, z_grad, gf,
                                    rowsum, threads);
  else
    mixture_rows_backward_t<float>(z_is_row, n, m, D, row_feat, row_term, col_feat, col_term, z_lse, z_grad, gf,
                                   rowsum, threads);
}

}  // namespace

void bind_pairwise(py::module_& m) {
  m.def("pairwise_sum_forward", &sum_forward,
        "out (B, P) float64 = sum_ij a_ip k(x_i, y_j) b_jp, tiled (sym: y = x, each unordered tile pair once)",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x"), py::arg("a"),
        py::arg("y"), py::arg("b"), py::arg("out"), py::arg("threads"));
  m.def("pairwise_sum_rows_backward", &sum_rows_backward,
        "gx (B, n, d) and ga (B, n, P) of <out, g> for the rows' side of sum_ij a_ip k(x_i, y_j) b_jp, times factor "
        "(0 for an output not wanted)",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x"), py::arg("a"),
        py::arg("y"), py::arg("b"), py::arg("g"), py::arg("factor"), py::arg("gx"), py::arg("ga"), py::arg("threads"));
  m.def("pairwise_sum_fused", &sum_fused,
        "out (B) float64 = sum_ij a_i k(x_i, y_j) b_j and its gradients gx, ga, gy, gb for an upstream gradient of "
        "1, from one pass over the pairs (sym: y = x, b = a; gy, gb unused); 0 for a gradient not wanted",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("x"), py::arg("a"), py::arg("y"),
        py::arg("b"), py::arg("out"), py::arg("gx"), py::arg("ga"), py::arg("gy"), py::arg("gb"), py::arg("threads"));
  m.def("pairwise_mixture_forward", &mixture_forward,
        "out (n) = logsumexp_j (<f_i, f_j> + t_j) - log m, tiled", py::arg("is_double"), py::arg("n"), py::arg("m"),
        py::arg("features"), py::arg("z_feat"), py::arg("comp_feat"), py::arg("comp_term"), py::arg("out"),
        py::arg("threads"));
  m.def("pairwise_mixture_rows_backward", &mixture_rows_backward,
        "per row: sum_j G_ij f_j and sum_j G_ij with G = g_z exp(score - lse_z), z the rows or the columns",
        py::arg("is_double"), py::arg("z_is_row"), py::arg("n"), py::arg("m"), py::arg("features"),
        py::arg("row_feat"), py::arg("row_term"), py::arg("col_feat"), py::arg("col_term"), py::arg("z_lse"),
        py::arg("z_grad"), py::arg("gf"), py::arg("rowsum"), py::arg("threads"));
}

}  // namespace implicitdiv

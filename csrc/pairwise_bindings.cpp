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

struct SideBuffers {
  std::uintptr_t feat, term, orig, weight;
};

template <typename T>
Side<T> side(const SideBuffers& s, int64_t b, int64_t n, int64_t D, int64_t d, int64_t P) {
  Side<T> out;
  out.feat = at<T>(s.feat, b * n * D);
  out.term = at<T>(s.term, b * n);
  out.orig = at<T>(s.orig, b * n * d);
  out.weight = at<T>(s.weight, b * n * P);
  out.n = n;
  return out;
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
void sum_forward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag, int64_t batch,
                   int64_t n, int64_t m, int64_t d, int64_t P, const SideBuffers& x, const SideBuffers& y,
                   std::uintptr_t out, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const Shape sh = sum_shape(kernel, sym, exclude_diag, d, P);
  const int workers = engine::workers_for(threads, n, m, d + 4 * P);
  for (int64_t b = 0; b < batch; ++b) {
    const Side<T> R = side<T>(x, b, n, d, d, P);
    const Side<T> C = sym ? R : side<T>(y, b, m, d, d, P);
    engine::sum_forward(sh, map, R, C, at_out(out, b * P), workers);
  }
}

template <typename T>
void sum_rows_backward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag,
                         int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, const SideBuffers& x,
                         const SideBuffers& y, std::uintptr_t gf, std::uintptr_t rowsum, std::uintptr_t direct,
                         std::uintptr_t kw, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const Shape sh = sum_shape(kernel, sym, exclude_diag, d, P);
  if (sh.score == Score::distance && (gf != 0) != (direct != 0))
    throw std::invalid_argument("the distance kernels need the direct buffer together with the feature gradient");
  const int workers = engine::workers_for(threads, n, m, 2 * d + 4 * P);
  for (int64_t b = 0; b < batch; ++b) {
    Side<T> R = side<T>(x, b, n, d, d, P);
    const Side<T> C = sym ? side<T>({x.feat, x.term, x.orig, y.weight}, b, n, d, d, P) : side<T>(y, b, m, d, d, P);
    engine::RowGrads<T> g;
    g.gf = at_out(gf, b * n * d);
    g.rowsum = at_out(rowsum, b * n);
    g.direct = sh.score == Score::distance ? at_out(direct, b * n * d) : nullptr;
    g.kw = at_out(kw, b * n * P);
    engine::rows_backward(sh, &map, R, C, true, g, workers);
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
                 int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x_feat,
                 std::uintptr_t x_term, std::uintptr_t x_orig, std::uintptr_t x_weight, std::uintptr_t y_feat,
                 std::uintptr_t y_term, std::uintptr_t y_orig, std::uintptr_t y_weight, std::uintptr_t out,
                 int threads) {
  check_sizes(batch, n, m, d);
  const SideBuffers x{x_feat, x_term, x_orig, x_weight}, y{y_feat, y_term, y_orig, y_weight};
  py::gil_scoped_release release;
  if (is_double)
    sum_forward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, out, threads);
  else
    sum_forward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, out, threads);
}

void sum_rows_backward(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
                       int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x_feat,
                       std::uintptr_t x_term, std::uintptr_t x_orig, std::uintptr_t x_weight, std::uintptr_t y_feat,
                       std::uintptr_t y_term, std::uintptr_t y_orig, std::uintptr_t y_weight, std::uintptr_t gf,
                       std::uintptr_t rowsum, std::uintptr_t direct, std::uintptr_t kw, int threads) {
  check_sizes(batch, n, m, d);
  const SideBuffers x{x_feat, x_term, x_orig, x_weight}, y{y_feat, y_term, y_orig, y_weight};
  py::gil_scoped_release release;
  if (is_double)
    sum_rows_backward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, gf, rowsum, direct, kw,
                                threads);
  else
    sum_rows_backward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, gf, rowsum, direct, kw,
                               threads);
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
        "out (B, P) = sum_ij a_ip k(x_i, y_j) b_jp, tiled (sym: y = x, each unordered tile pair once)",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x_feat"), py::arg("x_term"),
        py::arg("x_orig"), py::arg("x_weight"), py::arg("y_feat"), py::arg("y_term"), py::arg("y_orig"),
        py::arg("y_weight"), py::arg("out"), py::arg("threads"));
  m.def("pairwise_sum_rows_backward", &sum_rows_backward,
        "per row i of x: sum_j G_ij f_j, sum_j G_ij, the direct part sum_j G_ij (x_i - y_j) and sum_j k_ij b_jp, "
        "with G_ij = dk/ds(s_ij) sum_p ag_ip b_jp",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x_feat"), py::arg("x_term"),
        py::arg("x_orig"), py::arg("x_weight"), py::arg("y_feat"), py::arg("y_term"), py::arg("y_orig"),
        py::arg("y_weight"), py::arg("gf"), py::arg("rowsum"), py::arg("direct"), py::arg("kw"), py::arg("threads"));
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

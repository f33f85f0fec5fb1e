// implicitdiv._C routines of the tiled pairwise engine (pairwise_engine.h), over raw buffers.
// Every buffer is contiguous; an address of 0 means "absent". Buffers of a batch of B elements
// hold them one after the other. Outputs are of the input type (sums are taken in double and rounded
// once).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "buffers.h"
#include "pairwise_mixture.h"
#include "pairwise_passes.h"

namespace py = pybind11;

namespace implicitdiv {

namespace {

using engine::Score;
using engine::PassConfig;
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

// out (B, P) = sum_ij a_ip k(x_i, y_j) b_jp; NaN for a batch element whose points or weights hold a
// NaN or an Inf.
template <typename T>
void sum_forward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag, int64_t batch,
                   int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t y, std::uintptr_t a,
                   std::uintptr_t b, std::uintptr_t out, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const PassConfig cfg = sum_config(kernel, sym, exclude_diag, d, P);
  const int workers = engine::workers_for(threads, n, m, d + 4 * P);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(cfg, at<T>(x, e * n * d), n, sym ? nullptr : at<T>(y, e * m * d), m);
    const T* ae = at<T>(a, e * n * P);
    const T* be = sym ? nullptr : at<T>(b, e * m * P);
    T* oute = ptr<T>(out) + e * P;
    if (!(pts.center.finite && all_finite(ae, n * P) && (sym || all_finite(be, m * P)))) {
      fill_nan(oute, P);
      continue;
    }
    const Side<T> R = side(pts.x, ae);
    const Side<T> C = sym ? R : side(pts.y, be);
    std::vector<double> sums(P);
    engine::sum_forward(cfg, map, R, C, sums.data(), workers);
    round_into(sums, oute);
  }
}

// Gradients for the rows' points x and weights a of <out, g>, times factor (2 for the symmetric
// sum, whose points and weights sit on both sides of each pair).
template <typename T>
void sum_rows_backward_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag,
                         int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t y,
                         std::uintptr_t a, std::uintptr_t b, std::uintptr_t g, double factor, std::uintptr_t gx,
                         std::uintptr_t ga, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const PassConfig cfg = sum_config(kernel, sym, exclude_diag, d, P);
  const int workers = engine::workers_for(threads, n, m, 2 * d + 4 * P);
  std::vector<double> gf(gx ? n * d : 0), rowsum(gx ? n : 0), direct(gx ? n * d : 0), kw(ga ? n * P : 0);
  tiles::Buffer<T> ag(n * P);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(cfg, at<T>(x, e * n * d), n, sym ? nullptr : at<T>(y, e * m * d), m);
    const T* ae = at<T>(a, e * n * P);
    const T* ge = at<T>(g, e * P);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < P; ++p) ag.get()[i * P + p] = ae[i * P + p] * ge[p];
    const Side<T> R = side(pts.x, static_cast<const T*>(ag.get()));
    const Side<T> C = sym ? side(pts.x, ae) : side(pts.y, at<T>(b, e * m * P));
    std::fill(direct.begin(), direct.end(), 0.0);
    engine::RowGrads out;
    out.gf = gx ? gf.data() : nullptr;
    out.rowsum = gx ? rowsum.data() : nullptr;
    out.direct = gx && cfg.score == Score::distance ? direct.data() : nullptr;
    out.kw = ga ? kw.data() : nullptr;
    engine::rows_backward(cfg, &map, R, C, true, out, workers);
    if (gx) pts.x.gradient(gf.data(), rowsum.data(), direct.data(), factor, ptr<T>(gx) + e * n * d);
    if (ga) {
      T* gae = ptr<T>(ga) + e * n * P;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < P; ++p) gae[i * P + p] = static_cast<T>(factor * static_cast<double>(ge[p]) * kw[i * P + p]);
    }
  }
}

// The training pass (pairwise_fused.h), one weight column: out (B) and the gradients of out for an
// upstream gradient of 1, gx, ga and, unless sym, gy, gb (0: not wanted); NaN, value and gradients,
// for a batch element whose points or weights hold a NaN or an Inf.
template <typename T>
void sum_fused_t(int kernel, const std::vector<double>& bandwidths, bool sym, bool exclude_diag, int64_t batch,
                 int64_t n, int64_t m, int64_t d, std::uintptr_t x, std::uintptr_t y, std::uintptr_t a,
                 std::uintptr_t b, std::uintptr_t out, std::uintptr_t gx, std::uintptr_t gy, std::uintptr_t ga,
                 std::uintptr_t gb, int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const PassConfig cfg = sum_config(kernel, sym, exclude_diag, d, 1);
  const bool cross = !sym;
  std::vector<double> agx(gx ? n * d : 0), aga(ga ? n : 0), agy(gy && cross ? m * d : 0), agb(gb && cross ? m : 0);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(cfg, at<T>(x, e * n * d), n, cross ? at<T>(y, e * m * d) : nullptr, m);
    const T* ae = at<T>(a, e * n);
    const T* be = cross ? at<T>(b, e * m) : ae;
    T* gxe = gx ? ptr<T>(gx) + e * n * d : nullptr;
    T* gae = ga ? ptr<T>(ga) + e * n : nullptr;
    T* gye = gy && cross ? ptr<T>(gy) + e * m * d : nullptr;
    T* gbe = gb && cross ? ptr<T>(gb) + e * m : nullptr;
    if (!(pts.center.finite && all_finite(ae, n) && (sym || all_finite(be, m)))) {
      ptr<T>(out)[e] = std::numeric_limits<T>::quiet_NaN();
      fill_nan(gxe, n * d), fill_nan(gae, n), fill_nan(gye, m * d), fill_nan(gbe, m);
      continue;
    }
    for (auto* v : {&agx, &aga, &agy, &agb}) std::fill(v->begin(), v->end(), 0.0);
    GradAcc acc;
    acc.gx = gxe ? agx.data() : nullptr;
    acc.ga = gae ? aga.data() : nullptr;
    acc.gy = gye ? agy.data() : nullptr;
    acc.gb = gbe ? agb.data() : nullptr;
    ptr<T>(out)[e] = static_cast<T>(fused_pass(cfg, map, pts.x, ae, pts.y, be, 1.0, acc, threads));
    if (gxe) round_into(agx, gxe);
    if (gae) round_into(aga, gae);
    if (gye) round_into(agy, gye);
    if (gbe) round_into(agb, gbe);
  }
}

// MMD^2 of each batch element, its three sums in one call:
//   biased    1/N^2 sum_ij k(x_i, x_j) + 1/M^2 sum_ij k(y_i, y_j) - 2/(NM) sum_ij k(x_i, y_j)
//   unbiased  1/(N(N-1)) sum_{i!=j} k(x_i, x_j) + 1/(M(M-1)) sum_{i!=j} k(y_i, y_j) - 2/(NM) sum_ij k(x_i, y_j)
// with the points centered once for all three. With gx or gy (0: not wanted) each sum runs its
// training pass and the gradients of out for an upstream gradient of 1 are written too. NaN, value
// and gradients, for a batch element holding a NaN or an Inf.
template <typename T>
void mmd2_t(int kernel, const std::vector<double>& bandwidths, bool unbiased, int64_t batch, int64_t n, int64_t m,
            int64_t d, std::uintptr_t x, std::uintptr_t y, std::uintptr_t out, std::uintptr_t gx, std::uintptr_t gy,
            int threads) {
  const KernelMap<T> map(kernel, bandwidths);
  const PassConfig sym = sum_config(kernel, true, unbiased, d, 1), cross = sum_config(kernel, false, false, d, 1);
  const double nn = static_cast<double>(n), mm = static_cast<double>(m);
  const std::vector<T> ax(n, static_cast<T>(unbiased ? 1.0 / std::sqrt(nn * (nn - 1.0)) : 1.0 / nn));
  const std::vector<T> ay(m, static_cast<T>(unbiased ? 1.0 / std::sqrt(mm * (mm - 1.0)) : 1.0 / mm));
  const std::vector<T> axy(n, static_cast<T>(1.0 / nn)), bxy(m, static_cast<T>(-2.0 / mm));
  std::vector<double> agx(gx ? n * d : 0), agy(gy ? m * d : 0);
  for (int64_t e = 0; e < batch; ++e) {
    const PointPair<T> pts(cross, at<T>(x, e * n * d), n, at<T>(y, e * m * d), m);
    T* gxe = gx ? ptr<T>(gx) + e * n * d : nullptr;
    T* gye = gy ? ptr<T>(gy) + e * m * d : nullptr;
    T* oute = ptr<T>(out) + e;
    if (!pts.center.finite) {
      *oute = std::numeric_limits<T>::quiet_NaN();
      fill_nan(gxe, n * d), fill_nan(gye, m * d);
      continue;
    }
    if (!gxe && !gye) {
      const Side<T> X = side(pts.x, ax.data()), Y = side(pts.y, ay.data());
      *oute = static_cast<T>(forward_pass(sym, map, X, X, threads) + forward_pass(sym, map, Y, Y, threads) +
                             forward_pass(cross, map, side(pts.x, axy.data()), side(pts.y, bxy.data()), threads));
      continue;
    }
    std::fill(agx.begin(), agx.end(), 0.0), std::fill(agy.begin(), agy.end(), 0.0);
    GradAcc on_x, on_y, on_both;
    on_x.gx = on_both.gx = gxe ? agx.data() : nullptr;
    on_y.gx = on_both.gy = gye ? agy.data() : nullptr;
    *oute = static_cast<T>(fused_pass(sym, map, pts.x, ax.data(), pts.x, ax.data(), 1.0, on_x, threads) +
                           fused_pass(sym, map, pts.y, ay.data(), pts.y, ay.data(), 1.0, on_y, threads) +
                           fused_pass(cross, map, pts.x, axy.data(), pts.y, bxy.data(), 1.0, on_both, threads));
    if (gxe) round_into(agx, gxe);
    if (gye) round_into(agy, gye);
  }
}

template <typename T>
void mixture_forward_t(int64_t n, int64_t m, int64_t d, std::uintptr_t z, std::uintptr_t means, std::uintptr_t logvars,
                       std::uintptr_t out, int threads) {
  const MixtureSides<T> sides(ptr<const T>(z), ptr<const T>(means), ptr<const T>(logvars), n, m, d);
  std::vector<double> rows(n);
  sides.forward(rows.data(), threads);
  round_into(rows, ptr<T>(out));
}

template <typename T>
void mixture_backward_t(int64_t n, int64_t m, int64_t d, std::uintptr_t z, std::uintptr_t means, std::uintptr_t logvars,
                        std::uintptr_t out, std::uintptr_t g, std::uintptr_t gz, std::uintptr_t gm, std::uintptr_t glv,
                        int threads) {
  const MixtureSides<T> sides(ptr<const T>(z), ptr<const T>(means), ptr<const T>(logvars), n, m, d);
  sides.backward(ptr<const T>(out), ptr<const T>(g), gz ? ptr<T>(gz) : nullptr, gm ? ptr<T>(gm) : nullptr,
                 glv ? ptr<T>(glv) : nullptr, threads);
}

void sum_forward(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
                 int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t y,
                 std::uintptr_t a, std::uintptr_t b, std::uintptr_t out, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_forward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, a, b, out, threads);
  else
    sum_forward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, a, b, out, threads);
}

void sum_rows_backward(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
                       int64_t batch, int64_t n, int64_t m, int64_t d, int64_t P, std::uintptr_t x, std::uintptr_t y,
                       std::uintptr_t a, std::uintptr_t b, std::uintptr_t g, double factor, std::uintptr_t gx,
                       std::uintptr_t ga, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_rows_backward_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, a, b, g, factor, gx,
                                ga, threads);
  else
    sum_rows_backward_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, P, x, y, a, b, g, factor, gx, ga,
                               threads);
}

void sum_fused(bool is_double, int kernel, std::vector<double> bandwidths, bool sym, bool exclude_diag,
               int64_t batch, int64_t n, int64_t m, int64_t d, std::uintptr_t x, std::uintptr_t y, std::uintptr_t a,
               std::uintptr_t b, std::uintptr_t out, std::uintptr_t gx, std::uintptr_t gy, std::uintptr_t ga,
               std::uintptr_t gb, int threads) {
  check_sizes(batch, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    sum_fused_t<double>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, x, y, a, b, out, gx, gy, ga, gb, threads);
  else
    sum_fused_t<float>(kernel, bandwidths, sym, exclude_diag, batch, n, m, d, x, y, a, b, out, gx, gy, ga, gb, threads);
}

void mmd2(bool is_double, int kernel, std::vector<double> bandwidths, bool unbiased, int64_t batch, int64_t n,
          int64_t m, int64_t d, std::uintptr_t x, std::uintptr_t y, std::uintptr_t out, std::uintptr_t gx,
          std::uintptr_t gy, int threads) {
  check_sizes(batch, n, m, d);
  if (unbiased && (n < 2 || m < 2)) throw std::invalid_argument("the unbiased MMD^2 needs at least 2 points per set");
  py::gil_scoped_release release;
  if (is_double)
    mmd2_t<double>(kernel, bandwidths, unbiased, batch, n, m, d, x, y, out, gx, gy, threads);
  else
    mmd2_t<float>(kernel, bandwidths, unbiased, batch, n, m, d, x, y, out, gx, gy, threads);
}

void mixture_forward(bool is_double, int64_t n, int64_t m, int64_t d, std::uintptr_t z, std::uintptr_t means,
                     std::uintptr_t logvars, std::uintptr_t out, int threads) {
  check_sizes(1, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    mixture_forward_t<double>(n, m, d, z, means, logvars, out, threads);
  else
    mixture_forward_t<float>(n, m, d, z, means, logvars, out, threads);
}

void mixture_backward(bool is_double, int64_t n, int64_t m, int64_t d, std::uintptr_t z, std::uintptr_t means,
                      std::uintptr_t logvars, std::uintptr_t out, std::uintptr_t g, std::uintptr_t gz,
                      std::uintptr_t gm, std::uintptr_t glv, int threads) {
  check_sizes(1, n, m, d);
  py::gil_scoped_release release;
  if (is_double)
    mixture_backward_t<double>(n, m, d, z, means, logvars, out, g, gz, gm, glv, threads);
  else
    mixture_backward_t<float>(n, m, d, z, means, logvars, out, g, gz, gm, glv, threads);
}

}  // namespace

void bind_pairwise(py::module_& m) {
  m.def(
      "pairwise_kernel_names",
      [] { return std::vector<std::string>(kKernelNames, kKernelNames + kKernels); },
      "the kernels of the pairwise engine, in the order of their codes");
  m.def(
      "pairwise_dot_kernel_names",
      [] {
        std::vector<std::string> names;
        for (int k = 0; k < kKernels; ++k)
          if (dot_kernel(k)) names.emplace_back(kKernelNames[k]);
        return names;
      },
      "the kernels the engine computes from the dot product x.y (neither centered nor recomputed)");
  m.def("pairwise_near_fraction", [] { return engine::kNear; },
        "pairs with s < this fraction of |x - c|^2 + |y - c|^2 get s from explicit differences");
  m.def("pairwise_sum_forward", &sum_forward,
        "out (B, P) = sum_ij a_ip k(x_i, y_j) b_jp, tiled (sym: y = x, each unordered tile pair once)",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x"), py::arg("y"),
        py::arg("a"), py::arg("b"), py::arg("out"), py::arg("threads"));
  m.def("pairwise_sum_rows_backward", &sum_rows_backward,
        "gx (B, n, d) and ga (B, n, P) of <out, g> for the rows' side of sum_ij a_ip k(x_i, y_j) b_jp, times factor "
        "(0 for an output not wanted)",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("p"), py::arg("x"), py::arg("y"),
        py::arg("a"), py::arg("b"), py::arg("g"), py::arg("factor"), py::arg("gx"), py::arg("ga"), py::arg("threads"));
  m.def("pairwise_sum_fused", &sum_fused,
        "out (B) = sum_ij a_i k(x_i, y_j) b_j and its gradients gx, gy, ga, gb for an upstream gradient of "
        "1, from one pass over the pairs (sym: y = x, b = a; gy, gb unused); 0 for a gradient not wanted",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("sym"), py::arg("exclude_diag"),
        py::arg("batch"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("x"), py::arg("y"), py::arg("a"),
        py::arg("b"), py::arg("out"), py::arg("gx"), py::arg("gy"), py::arg("ga"), py::arg("gb"), py::arg("threads"));
  m.def("pairwise_mmd2", &mmd2,
        "out (B) = MMD^2 of x (B, n, d) and y (B, m, d), biased or unbiased, its three sums in one call; "
        "with gx / gy (0: not wanted) also the gradients of out for an upstream gradient of 1 (training pass); "
        "NaN, value and gradients, for a batch element holding a NaN or an Inf",
        py::arg("is_double"), py::arg("kernel"), py::arg("bandwidths"), py::arg("unbiased"), py::arg("batch"),
        py::arg("n"), py::arg("m"), py::arg("d"), py::arg("x"), py::arg("y"), py::arg("out"), py::arg("gx"),
        py::arg("gy"), py::arg("threads"));
  m.def("pairwise_mixture_forward", &mixture_forward,
        "out (n) = log (1/m) sum_j N(z_i; means_j, diag exp(logvars_j)), tiled; NaN in a row whose z holds a "
        "NaN or an Inf, and everywhere when a component does",
        py::arg("is_double"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("z"), py::arg("means"),
        py::arg("logvars"), py::arg("out"), py::arg("threads"));
  m.def("pairwise_mixture_backward", &mixture_backward,
        "gz (n, d), gm and glv (m, d) of <out, g> (0: not wanted), out the forward's result in the input type",
        py::arg("is_double"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("z"), py::arg("means"),
        py::arg("logvars"), py::arg("out"), py::arg("g"), py::arg("gz"), py::arg("gm"), py::arg("glv"),
        py::arg("threads"));
}

}  // namespace implicitdiv

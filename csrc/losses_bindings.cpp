#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "buffers.h"
#include "losses_driver.h"
#include "losses_gaussian.h"
#include "losses_maps.h"
#include "losses_ratio.h"

namespace py = pybind11;

namespace implicitdiv {

namespace {

template <typename T>
T* or_null(std::uintptr_t address) {
  return address == 0 ? nullptr : ptr<T>(address);
}

// The terms of one loss configuration, fixed once (the kernel module keeps one per terms, input
// sizes and reduction): term k reads input inputs[k] (lengths[inputs[k]] elements) and is
// scales[k] * (f_k(x) + offsets[k]); it writes its values or adds its sum into output out_of[k],
// and writes scales[k] * f_k'(x) where asked. run() takes the buffers of one call.
struct RatioLossConfig {
  std::vector<int64_t> lengths;
  std::vector<int> inputs, maps, out_of;
  std::vector<double> offsets, scales;
  int n_out;

  RatioLossConfig(std::vector<int64_t> lengths_, std::vector<int> inputs_, std::vector<int> maps_,
                std::vector<double> offsets_, std::vector<double> scales_, std::vector<int> out_of_, int n_out_)
      : lengths(std::move(lengths_)), inputs(std::move(inputs_)), maps(std::move(maps_)), out_of(std::move(out_of_)),
        offsets(std::move(offsets_)), scales(std::move(scales_)), n_out(n_out_) {
    const size_t k = maps.size();
    if (inputs.size() != k || offsets.size() != k || scales.size() != k || out_of.size() != k || n_out < 0)
      throw std::invalid_argument("RatioLossConfig: one input, map, offset, scale and output per term");
    for (size_t j = 0; j < k; ++j)
      if (inputs[j] < 0 || inputs[j] >= static_cast<int>(lengths.size()) || (n_out > 0 && (out_of[j] < 0 || out_of[j] >= n_out)))
        throw std::invalid_argument("RatioLossConfig: a term names an input or output that does not exist");
  }

  // addresses: one per input, then per term its values (0: summed into its output), then per term its
  // derivatives (0: none), then one 0-dim buffer per output (n_out; the sums, rounded to T).
  template <typename T>
  void run_typed(const std::vector<std::uintptr_t>& addresses, int threads) const {
    const size_t n_in = lengths.size(), k = maps.size();
    const std::uintptr_t* values = addresses.data() + n_in;
    const std::uintptr_t* derivs = values + k;
    const std::uintptr_t* outs = derivs + k;
    std::vector<double> totals(n_out, 0.0);
    for (size_t i = 0; i < n_in; ++i) {
      std::vector<RatioTerm<T>> terms;
      std::vector<size_t> which;
      for (size_t j = 0; j < k; ++j) {
        if (inputs[j] != static_cast<int>(i)) continue;
        terms.push_back({maps[j], offsets[j], scales[j], scales[j], or_null<T>(values[j]), or_null<T>(derivs[j])});
        which.push_back(j);
      }
      if (terms.empty()) continue;
      std::vector<double> sums(terms.size(), 0.0);
      ratio_terms(ptr<const T>(addresses[i]), lengths[i], terms, threads, sums.data());
      for (size_t t = 0; t < which.size(); ++t)
        if (!values[which[t]]) totals[out_of[which[t]]] += sums[t];
    }
    for (int o = 0; o < n_out; ++o) *ptr<T>(outs[o]) = static_cast<T>(totals[o]);
  }

  void run(const std::vector<std::uintptr_t>& addresses, int threads, bool is_double) const {
    if (addresses.size() != lengths.size() + 2 * maps.size() + static_cast<size_t>(n_out))
      throw std::invalid_argument("RatioLossConfig.run: one address per input, two per term and one per output");
    for (size_t j = 0; j < maps.size(); ++j)
      if (n_out == 0 && !addresses[lengths.size() + j])
        throw std::invalid_argument("RatioLossConfig.run: without outputs every term writes its values");
    py::gil_scoped_release release;
    if (is_double)
      run_typed<double>(addresses, threads);
    else
      run_typed<float>(addresses, threads);
  }
};

// d <- a * d + b over n elements in place (the backward's scaling of saved derivatives by the
// upstream gradients), in fixed chunks on up to `threads` threads.
template <typename T>
void scale_shift_typed(std::uintptr_t d, int64_t n, double a, double b, int threads) {
  constexpr int64_t kChunk = 1 << 16;
  T* p = ptr<T>(d);
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  py::gil_scoped_release release;
  for_each_chunk((n + kChunk - 1) / kChunk, threads, [&](int64_t c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) p[i] = ta * p[i] + tb;
  });
}

void scale_shift_entry(std::uintptr_t d, int64_t n, double a, double b, int threads, bool is_double) {
  if (is_double)
    scale_shift_typed<double>(d, n, a, b, threads);
  else
    scale_shift_typed<float>(d, n, a, b, threads);
}

template <typename T>
double gaussian_terms_typed(int kind, int64_t rows, int64_t d, const std::vector<std::uintptr_t>& ins,
                            const std::vector<int64_t>& in_row_strides, const std::vector<std::uintptr_t>& outs,
                            double deriv_scale, std::uintptr_t row_values, int threads) {
  if (ins.size() > 4 || in_row_strides.size() != ins.size() || outs.size() > 3)
    throw std::invalid_argument("gaussian_terms: at most 4 inputs (one row stride each) and 3 outputs");
  GaussianCall<T> call{kind, rows, d, {}, {}, {}, deriv_scale, or_null<T>(row_values)};
  for (size_t q = 0; q < ins.size(); ++q) {
    call.in[q] = ptr<const T>(ins[q]);
    call.in_row_stride[q] = in_row_strides[q];
  }
  for (size_t q = 0; q < outs.size(); ++q) call.outs[q] = or_null<T>(outs[q]);
  py::gil_scoped_release release;
  return gaussian_terms(call, threads);
}

double gaussian_terms_entry(int kind, int64_t rows, int64_t d, const std::vector<std::uintptr_t>& ins,
                            const std::vector<int64_t>& in_row_strides, const std::vector<std::uintptr_t>& outs,
                            double deriv_scale, std::uintptr_t row_values, int threads, bool is_double) {
  if (is_double) return gaussian_terms_typed<double>(kind, rows, d, ins, in_row_strides, outs, deriv_scale, row_values, threads);
  return gaussian_terms_typed<float>(kind, rows, d, ins, in_row_strides, outs, deriv_scale, row_values, threads);
}

}  // namespace

void bind_losses(py::module_& m) {
  m.def("ratio_map_names", [] { return std::vector<std::string>(std::begin(kMapNames), std::end(kMapNames)); },
        "names of the elementwise ratio maps, indexed by map id");
  // module_local: each instruction set's module (implicitdiv._C_<isa>) registers its own type
  py::class_<RatioLossConfig>(m, "RatioLossConfig", py::module_local(),
                            "the terms of one loss configuration: scale_k (f_k(x) + offset_k) over input inputs_k, "
                            "values per element or summed into output out_of_k, derivatives scale_k f_k'(x); a NaN or "
                            "+-inf logit gives a NaN value")
      .def(py::init<std::vector<int64_t>, std::vector<int>, std::vector<int>, std::vector<double>, std::vector<double>,
                    std::vector<int>, int>(),
           py::arg("lengths"), py::arg("inputs"), py::arg("maps"), py::arg("offsets"), py::arg("scales"),
           py::arg("out_of"), py::arg("n_out"))
      .def("run", &RatioLossConfig::run,
           "one call: addresses of the inputs, then per term its values (0: summed) and its derivatives (0: none), "
           "then one 0-dim buffer per output",
           py::arg("addresses"), py::arg("threads"), py::arg("is_double"));
  m.def("scale_shift", &scale_shift_entry, "d <- a * d + b in place over n contiguous elements", py::arg("d"),
        py::arg("n"), py::arg("a"), py::arg("b"), py::arg("threads"), py::arg("is_double"));
  m.def("gaussian_kind_names", [] {
          return std::vector<std::string>(std::begin(kGaussianKindNames), std::end(kGaussianKindNames));
        },
        "names of the Gaussian term kinds, indexed by kind id");
  m.def("gaussian_terms", &gaussian_terms_entry,
        "one pass over rows x d inputs: per-row sums of the kind's term (into row_values when given), the "
        "elementwise outputs, and the total over rows",
        py::arg("kind"), py::arg("rows"), py::arg("d"), py::arg("ins"), py::arg("in_row_strides"), py::arg("outs"),
        py::arg("deriv_scale"), py::arg("row_values"), py::arg("threads"), py::arg("is_double"));
}

}  // namespace implicitdiv

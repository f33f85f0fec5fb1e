#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "buffers.h"
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

template <typename T>
std::vector<double> ratio_terms_typed(std::uintptr_t x, int64_t n, const std::vector<int>& maps,
                                      const std::vector<double>& offsets, const std::vector<double>& value_scales,
                                      const std::vector<double>& deriv_scales, const std::vector<std::uintptr_t>& values,
                                      const std::vector<std::uintptr_t>& derivs, int threads) {
  const size_t k = maps.size();
  if (offsets.size() != k || value_scales.size() != k || deriv_scales.size() != k || values.size() != k ||
      derivs.size() != k)
    throw std::invalid_argument("ratio_terms: maps, offsets, scales, values and derivs need one entry per term");
  std::vector<RatioTerm<T>> terms;
  for (size_t j = 0; j < k; ++j)
    terms.push_back({maps[j], offsets[j], value_scales[j], deriv_scales[j], or_null<T>(values[j]), or_null<T>(derivs[j])});
  std::vector<double> sums(k, 0.0);
  py::gil_scoped_release release;
  ratio_terms(ptr<const T>(x), n, terms, threads, sums.data());
  return sums;
}

std::vector<double> ratio_terms_entry(std::uintptr_t x, int64_t n, const std::vector<int>& maps,
                                      const std::vector<double>& offsets, const std::vector<double>& value_scales,
                                      const std::vector<double>& deriv_scales, const std::vector<std::uintptr_t>& values,
                                      const std::vector<std::uintptr_t>& derivs, int threads, bool is_double) {
  if (is_double) return ratio_terms_typed<double>(x, n, maps, offsets, value_scales, deriv_scales, values, derivs, threads);
  return ratio_terms_typed<float>(x, n, maps, offsets, value_scales, deriv_scales, values, derivs, threads);
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
  m.def("ratio_terms", &ratio_terms_entry,
        "one pass over x (n): per term k, values scale_k (f_k(x) + offset_k) or their unscaled sum, and "
        "derivatives deriv_scale_k f_k'(x); returns the sums (0 for terms that wrote values)",
        py::arg("x"), py::arg("n"), py::arg("maps"), py::arg("offsets"), py::arg("value_scales"),
        py::arg("deriv_scales"), py::arg("values"), py::arg("derivs"), py::arg("threads"), py::arg("is_double"));
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

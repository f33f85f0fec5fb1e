#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
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

// Every term of one loss call in one call: term k reads xs[inputs[k]] (lengths[inputs[k]]
// elements) and is scales[k] * (f_k(x) + offsets[k]); it writes its values (values[k]) or adds its
// sum into output out_of[k], and writes scales[k] * f_k'(x) into derivs[k] (0: none). Output o's
// sum is written, rounded to T, to the address outs[o] (outs empty when every term writes values).
template <typename T>
void ratio_losses_typed(const std::vector<std::uintptr_t>& xs, const std::vector<int64_t>& lengths,
                        const std::vector<int>& inputs, const std::vector<int>& maps, const std::vector<double>& offsets,
                        const std::vector<double>& scales, const std::vector<std::uintptr_t>& values,
                        const std::vector<std::uintptr_t>& derivs, const std::vector<int>& out_of,
                        const std::vector<std::uintptr_t>& outs, int threads) {
  const int n_out = static_cast<int>(outs.size());
  const size_t k = maps.size();
  if (lengths.size() != xs.size() || inputs.size() != k || offsets.size() != k || scales.size() != k ||
      values.size() != k || derivs.size() != k || out_of.size() != k)
    throw std::invalid_argument("ratio_losses: one length per input and one input, map, offset, scale, values, "
                                "derivs and output per term");
  for (size_t j = 0; j < k; ++j)
    if (inputs[j] < 0 || inputs[j] >= static_cast<int>(xs.size()) || (!values[j] && (out_of[j] < 0 || out_of[j] >= n_out)))
      throw std::invalid_argument("ratio_losses: a term names an input or output that does not exist");
  std::vector<double> totals(n_out, 0.0);
  py::gil_scoped_release release;
  for (size_t i = 0; i < xs.size(); ++i) {
    std::vector<RatioTerm<T>> terms;
    std::vector<size_t> which;
    for (size_t j = 0; j < k; ++j) {
      if (inputs[j] != static_cast<int>(i)) continue;
      terms.push_back({maps[j], offsets[j], scales[j], scales[j], or_null<T>(values[j]), or_null<T>(derivs[j])});
      which.push_back(j);
    }
    if (terms.empty()) continue;
    std::vector<double> sums(terms.size(), 0.0);
    ratio_terms(ptr<const T>(xs[i]), lengths[i], terms, threads, sums.data());
    for (size_t t = 0; t < which.size(); ++t)
      if (!values[which[t]]) totals[out_of[which[t]]] += scales[which[t]] * sums[t];
  }
  for (int o = 0; o < n_out; ++o) *ptr<T>(outs[o]) = static_cast<T>(totals[o]);
}

void ratio_losses_entry(const std::vector<std::uintptr_t>& xs, const std::vector<int64_t>& lengths,
                        const std::vector<int>& inputs, const std::vector<int>& maps, const std::vector<double>& offsets,
                        const std::vector<double>& scales, const std::vector<std::uintptr_t>& values,
                        const std::vector<std::uintptr_t>& derivs, const std::vector<int>& out_of,
                        const std::vector<std::uintptr_t>& outs, int threads, bool is_double) {
  if (is_double)
    ratio_losses_typed<double>(xs, lengths, inputs, maps, offsets, scales, values, derivs, out_of, outs, threads);
  else
    ratio_losses_typed<float>(xs, lengths, inputs, maps, offsets, scales, values, derivs, out_of, outs, threads);
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
  m.def("ratio_losses", &ratio_losses_entry,
        "every term of a loss call over its inputs in one call: values scale_k (f_k(x) + offset_k) per element or "
        "summed into the 0-dim output at outs[out_of_k] (written rounded to the input type), derivatives scale_k f_k'(x); a NaN or "
        "+-inf logit gives a NaN value",
        py::arg("xs"), py::arg("lengths"), py::arg("inputs"), py::arg("maps"), py::arg("offsets"), py::arg("scales"),
        py::arg("values"), py::arg("derivs"), py::arg("out_of"), py::arg("outs"), py::arg("threads"),
        py::arg("is_double"));
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

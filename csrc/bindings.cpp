// pybind11 entry points of implicitdiv._C. Every routine takes raw buffer addresses and sizes
// (tensors are made contiguous on the Python side), so nothing here depends on libtorch.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "distances.h"

namespace py = pybind11;

namespace {

template <typename T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

void squared_distances(std::uintptr_t x, std::uintptr_t y, std::uintptr_t out, int64_t n, int64_t m, int64_t d,
                       bool is_double) {
  py::gil_scoped_release release;
  if (is_double)
    implicitdiv::squared_distances_tile(ptr<const double>(x), ptr<const double>(y), ptr<double>(out), n, m, d);
  else
    implicitdiv::squared_distances_tile(ptr<const float>(x), ptr<const float>(y), ptr<float>(out), n, m, d);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "implicitdiv CPU kernels over raw buffers";
  m.def("squared_distances", &squared_distances, "out (n, m) = pairwise squared distances of x (n, d), y (m, d)",
        py::arg("x"), py::arg("y"), py::arg("out"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("is_double"));
}

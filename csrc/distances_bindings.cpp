#include <pybind11/pybind11.h>

#include "buffers.h"
#include "distances.h"

namespace py = pybind11;

namespace implicitdiv {

namespace {
void squared_distances(std::uintptr_t x, std::uintptr_t y, std::uintptr_t out, int64_t n, int64_t m, int64_t d,
                       bool is_double) {
  py::gil_scoped_release release;
  if (is_double)
    squared_distances_tile(ptr<const double>(x), ptr<const double>(y), ptr<double>(out), n, m, d);
  else
    squared_distances_tile(ptr<const float>(x), ptr<const float>(y), ptr<float>(out), n, m, d);
}
}  // namespace

void bind_distances(py::module_& m) {
  m.def("squared_distances", &squared_distances, "out (n, m) = pairwise squared distances of x (n, d), y (m, d)",
        py::arg("x"), py::arg("y"), py::arg("out"), py::arg("n"), py::arg("m"), py::arg("d"), py::arg("is_double"));
}

}  // namespace implicitdiv

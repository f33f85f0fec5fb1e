// The pybind11 module implicitdiv._C. Each family binds its routines in its own *_bindings.cpp.
// Every routine takes raw buffer addresses and sizes (tensors are made contiguous on the Python
// side), so nothing here depends on libtorch.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace implicitdiv {
void bind_distances(py::module_& m);
void bind_pairwise(py::module_& m);
void bind_losses(py::module_& m);
}  // namespace implicitdiv

PYBIND11_MODULE(_C, m) {
  m.doc() = "implicitdiv CPU kernels over raw buffers";
  implicitdiv::bind_distances(m);
  implicitdiv::bind_pairwise(m);
  implicitdiv::bind_losses(m);
}

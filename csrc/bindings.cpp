// The pybind11 module implicitdiv._C_<isa>, one per instruction set (CMakeLists.txt sets
// IMPLICITDIV_MODULE_NAME; implicitdiv/_C.py picks one at import). Each family binds its routines in
// its own *_bindings.cpp.
// Every routine takes raw buffer addresses and sizes (tensors are made contiguous on the Python
// side), so nothing here depends on libtorch.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "threads.h"

namespace py = pybind11;

namespace implicitdiv {
void bind_pairwise(py::module_& m);
void bind_losses(py::module_& m);
}  // namespace implicitdiv

PYBIND11_MODULE(IMPLICITDIV_MODULE_NAME, m) {
  m.doc() = "implicitdiv CPU kernels over raw buffers";
  implicitdiv::bind_pairwise(m);
  implicitdiv::bind_losses(m);
  m.def("openmp_built", &implicitdiv::openmp_built, "whether this module was built with OpenMP");
  m.def(
      "openmp_symbol",
      []() -> std::uintptr_t {
#ifdef _OPENMP
        return reinterpret_cast<std::uintptr_t>(&omp_get_max_threads);
#else
        return 0;
#endif
      },
      "address of omp_get_max_threads in the OpenMP runtime this module is bound to (0: none)");
  m.def(
      "use_openmp_team",
      [](bool on) {
        implicitdiv::team_from_openmp() = on && implicitdiv::openmp_built();
        return implicitdiv::team_from_openmp().load();
      },
      "take worker teams from the OpenMP runtime (only when it is torch's own); returns whether they now are",
      py::arg("on"));
}

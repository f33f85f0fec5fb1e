#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace implicitdiv {

// The tiled pairwise engine's routines are bound here as they land.
void bind_pairwise(py::module_& m) { (void)m; }

}  // namespace implicitdiv

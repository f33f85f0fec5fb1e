// Raw buffer addresses as handed over from Python (tensor.data_ptr()).
#pragma once
#include <cstdint>

namespace implicitdiv {

template <typename T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

}  // namespace implicitdiv

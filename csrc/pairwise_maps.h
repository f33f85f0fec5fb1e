// The elementwise maps of the pairwise engine, on vectors of pair scores s: the kernel value k(s)
// and its derivative dk/ds, summed over the bandwidths of a mixture (s is computed once per pair).
//
//   rbf        exp(-s / (2 sigma^2))        dk/ds = -exp(-s / (2 sigma^2)) / (2 sigma^2)
//   laplacian  exp(-sqrt(s) / sigma)        dk/ds = -exp(-sqrt(s) / sigma) / (2 sigma sqrt(s)), 0 at s = 0
//   imq        C / (C + s), C = sigma       dk/ds = -C / (C + s)^2
//   energy     -sqrt(s)                     dk/ds = -1 / (2 sqrt(s)), 0 at s = 0
//   linear     s (here s is the dot product x.y)   dk/ds = 1
//
// The zero at s = 0 is the symmetric subgradient of sqrt the reference uses.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "pairwise_simd.h"

namespace implicitdiv {

enum class Kernel : int { rbf = 0, laplacian = 1, imq = 2, energy = 3, linear = 4 };

template <typename T>
struct KernelMap {
  using V = simd::Vec<T>;
  Kernel kind;
  std::vector<T> c;  // per bandwidth: 1/(2 sigma^2) for rbf, 1/sigma for laplacian, sigma for imq

  KernelMap(int kernel, const std::vector<double>& bandwidths) : kind(static_cast<Kernel>(kernel)) {
    if (kernel < 0 || kernel > 4) throw std::invalid_argument("kernel code must be in [0, 4]");
    if (bandwidths.empty() && (kind == Kernel::rbf || kind == Kernel::laplacian || kind == Kernel::imq))
      throw std::invalid_argument("bandwidths must not be empty");
    for (double sigma : bandwidths) {
      if (kind == Kernel::rbf) c.push_back(static_cast<T>(1.0 / (2.0 * sigma * sigma)));
      if (kind == Kernel::laplacian) c.push_back(static_cast<T>(1.0 / sigma));
      if (kind == Kernel::imq) c.push_back(static_cast<T>(sigma));
    }
  }

  bool is_distance() const { return kind != Kernel::linear; }

  V value(V s) const {
    V k{};
    switch (kind) {
      case Kernel::rbf:
        for (T h : c) k += simd::vexp(-s * h);
        return k;
      case Kernel::laplacian: {
        const V r = simd::vsqrt(s);
        for (T inv : c) k += simd::vexp(-r * inv);
        return k;
      }
      case Kernel::imq:
        for (T sig : c) k += sig / (sig + s);
        return k;
      case Kernel::energy:
        return -simd::vsqrt(s);
      case Kernel::linear:
        return s;
    }
    return k;
  }

  // k(s) into *k and dk/ds returned.
  V derivative(V s, V* k) const {
    V dk{}, kv{};
    switch (kind) {
      case Kernel::rbf:
        for (T h : c) {
          const V e = simd::vexp(-s * h);
          kv += e;
          dk -= e * h;
        }
        break;
      case Kernel::laplacian: {
        const V r = simd::vsqrt(s);
        const V half_inv_r = (s == V{}) ? V{} : T(0.5) / r;
        for (T inv : c) {
          const V e = simd::vexp(-r * inv);
          kv += e;
          dk -= e * inv;
        }
        dk *= half_inv_r;
        break;
      }
      case Kernel::imq:
        for (T sig : c) {
          const V q = sig / (sig + s);
          kv += q;
          dk -= q * q / sig;
        }
        break;
      case Kernel::energy: {
        const V r = simd::vsqrt(s);
        kv = -r;
        dk = (s == V{}) ? V{} : T(-0.5) / r;
        break;
      }
      case Kernel::linear:
        kv = s;
        dk = V{} + T(1);
        break;
    }
    *k = kv;
    return dk;
  }
};

}  // namespace implicitdiv

// The elementwise maps of the pairwise engine, on vectors of pair scores s: the kernel value k(s)
// and its derivative dk/ds, summed over the bandwidths of a mixture (s is computed once per pair).
//
//   rbf        exp(-s / (2 sigma^2))        dk/ds = -exp(-s / (2 sigma^2)) / (2 sigma^2)
//   laplacian  exp(-sqrt(s) / sigma)        dk/ds = -exp(-sqrt(s) / sigma) / (2 sigma sqrt(s)), 0 at s = 0
//   imq        C / (C + s), C = sigma       dk/ds = -C / (C + s)^2
//   energy     -sqrt(s)                     dk/ds = -1 / (2 sqrt(s)), 0 at s = 0
//   linear     s (here s is the dot product x.y)   dk/ds = 1
//   polynomial (gamma s + c0)^p, s = x.y         dk/ds = p gamma (gamma s + c0)^(p - 1)
//              (parameters gamma, c0, p in place of the bandwidths; p a whole number >= 1)
//
// The zero at s = 0 is the symmetric subgradient of sqrt the reference uses.
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "pairwise_simd.h"

namespace implicitdiv {

enum class Kernel : int { rbf = 0, laplacian = 1, imq = 2, energy = 3, linear = 4, polynomial = 5 };
// The names of the codes, in code order: implicitdiv._codes.KERNELS (tests/test_kernel_codes.py).
constexpr const char* kKernelNames[] = {"rbf", "laplacian", "imq", "energy", "linear", "polynomial"};
constexpr int kKernels = sizeof(kKernelNames) / sizeof(kKernelNames[0]);

// Kernels of the dot product x.y rather than of the squared distance: implicitdiv._codes.DOT_KERNELS
// (tests/test_kernel_codes.py reads this list through pairwise_dot_kernel_names).
inline bool dot_kernel(int kernel) {
  return kernel == static_cast<int>(Kernel::linear) || kernel == static_cast<int>(Kernel::polynomial);
}

template <typename T>
struct KernelMap {
  using V = simd::Vec<T>;
  Kernel kind;
  // Per bandwidth, positive (the maps negate them: exp(-c s)); the Triton kernels' coef is the same
  // (implicitdiv/fused/triton/pairwise.py _coefficients): 1/(2 sigma^2) for rbf, 1/sigma for
  // laplacian, sigma for imq.
  std::vector<T> c;
  T gamma = 0, c0 = 0;  // polynomial
  int degree = 0;

  KernelMap(int kernel, const std::vector<double>& bandwidths) : kind(static_cast<Kernel>(kernel)) {
    if (kernel < 0 || kernel >= kKernels) throw std::invalid_argument("unknown kernel code");
    if (bandwidths.empty() && (kind == Kernel::rbf || kind == Kernel::laplacian || kind == Kernel::imq))
      throw std::invalid_argument("bandwidths must not be empty");
    if (kind == Kernel::polynomial) {
      if (bandwidths.size() != 3 || !(bandwidths[2] >= 1) || bandwidths[2] != std::floor(bandwidths[2]))
        throw std::invalid_argument("the polynomial kernel takes (gamma, coef0, degree) with a whole degree >= 1");
      gamma = static_cast<T>(bandwidths[0]);
      c0 = static_cast<T>(bandwidths[1]);
      degree = static_cast<int>(bandwidths[2]);
      return;
    }
    for (double sigma : bandwidths) {
      if (kind == Kernel::rbf) c.push_back(static_cast<T>(1.0 / (2.0 * sigma * sigma)));
      if (kind == Kernel::laplacian) c.push_back(static_cast<T>(1.0 / sigma));
      if (kind == Kernel::imq) c.push_back(static_cast<T>(sigma));
    }
  }

  bool is_distance() const { return !dot_kernel(static_cast<int>(kind)); }

  // b^e for a whole e >= 0, by squaring.
  static V power(V b, int e) {
    V r = V{} + T(1);
    while (e > 0) {
      if (e & 1) r *= b;
      e >>= 1;
      if (e) b *= b;
    }
    return r;
  }

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
      case Kernel::polynomial:
        return power(s * gamma + c0, degree);
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
      case Kernel::polynomial: {
        const V base = s * gamma + c0;
        const V below = power(base, degree - 1);
        kv = below * base;
        dk = below * (gamma * static_cast<T>(degree));
        break;
      }
    }
    *k = kv;
    return dk;
  }
};

}  // namespace implicitdiv

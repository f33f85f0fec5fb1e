// The elementwise maps f(v) behind every discriminator log-ratio loss, each returning f(v) and
// writing f'(v). A loss term is scale * (f(v) + offset); the kind -> (map, scale, offset) table
// lives in implicitdiv/ops/ratio_terms.py. A map's code is its index in kMapNames, the names of
// implicitdiv._codes.RATIO_MAPS in order (tests/test_kernel_codes.py).
#pragma once
#include "losses_math.h"

namespace implicitdiv {

enum class Map : int {
  kSoftplusNeg,   // softplus(-v)
  kSoftplus,      // softplus(v)
  kReluOneMinus,  // relu(1 - v)
  kReluOnePlus,   // relu(1 + v)
  kLinear,        // v
  kHalfSqShift,   // (v - 1)^2 / 2
  kHalfSq,        // v^2 / 2
  kExpNeg,        // exp(-v)
  kExpm1Neg,      // exp(-v) - 1
  kTanh,          // tanh(v)
  kExpShift,      // exp(v - 1)
  kExpm1,         // exp(v) - 1
  kPearson,       // v^2 / 4 + v
  kCount
};

inline constexpr const char* kMapNames[] = {"softplus_neg", "softplus", "relu_one_minus", "relu_one_plus",
                                            "linear",       "half_sq_shift", "half_sq",   "exp_neg",
                                            "expm1_neg",    "tanh",          "exp_shift", "expm1",
                                            "pearson"};
static_assert(sizeof(kMapNames) / sizeof(kMapNames[0]) == static_cast<int>(Map::kCount), "one name per map");

// The softplus maps start from a part that depends on |v| only (lossmath::SoftplusCore), so when one
// logit vector carries both softplus(v) and softplus(-v) -- the fake logits under the GAN and JS
// discriminators with the non-saturating generator -- ratio_terms evaluates that part once for
// the two (shares_core). from_core gives the same bits as apply_map, which is built on it.
template <Map M>
inline constexpr bool is_softplus = M == Map::kSoftplus || M == Map::kSoftplusNeg;

template <Map M1, Map M2>
inline constexpr bool shares_core = M1 != M2 && is_softplus<M1> && is_softplus<M2>;

template <Map M, typename T>
inline T from_core(T v, const lossmath::SoftplusCore<T>& c, T& d) {
  static_assert(is_softplus<M>, "only the softplus maps have a core");
  if constexpr (M == Map::kSoftplusNeg) {
    T sig;
    const T f = lossmath::softplus(-v, c, sig);
    d = -sig;
    return f;
  } else {
    return lossmath::softplus(v, c, d);
  }
}

template <Map M, typename T>
inline T apply_map(T v, T& d) {
  namespace lm = lossmath;
  if constexpr (is_softplus<M>) {
    return from_core<M>(v, lm::softplus_core(v), d);
  } else if constexpr (M == Map::kReluOneMinus) {
    const T a = T(1) - v;  // as torch's relu: derivative 0 where a <= 0 (the kink too), 1 elsewhere
    d = a <= T(0) ? T(0) : T(-1);
    return a > T(0) ? a : (v == v ? T(0) : v);
  } else if constexpr (M == Map::kReluOnePlus) {
    const T a = T(1) + v;
    d = a <= T(0) ? T(0) : T(1);
    return a > T(0) ? a : (v == v ? T(0) : v);
  } else if constexpr (M == Map::kLinear) {
    d = T(1);
    return v;
  } else if constexpr (M == Map::kHalfSqShift) {
    d = v - T(1);
    return T(0.5) * d * d;
  } else if constexpr (M == Map::kHalfSq) {
    d = v;
    return T(0.5) * v * v;
  } else if constexpr (M == Map::kExpNeg) {
    const T e = lm::exp(-v);
    d = -e;
    return e;
  } else if constexpr (M == Map::kExpm1Neg) {
    T e;
    const T f = lm::expm1(-v, e);
    d = -e;
    return f;
  } else if constexpr (M == Map::kTanh) {
    return lm::tanh(v, d);
  } else if constexpr (M == Map::kExpShift) {
    const T e = lm::exp(v - T(1));
    d = e;
    return e;
  } else if constexpr (M == Map::kExpm1) {
    return lm::expm1(v, d);
  } else {
    static_assert(M == Map::kPearson, "unhandled map");
    d = T(0.5) * v + T(1);
    return T(0.25) * v * v + v;
  }
}

}  // namespace implicitdiv

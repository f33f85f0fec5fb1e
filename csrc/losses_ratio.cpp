#include "losses_ratio.h"

#include <array>
#include <stdexcept>

#include "losses_driver.h"
#include "losses_maps.h"

namespace implicitdiv {

namespace {

constexpr int64_t kBlock = 1024;          // elements per cache-resident block
constexpr int64_t kChunk = 16 * kBlock;   // elements per partial sum

// One term's share of a block: values vscale * (f + offset) into val (the term's own buffer, or
// scratch that is summed afterwards), derivatives dscale * f' into der when it is not null. The NaN
// rule of the public functions: a NaN or +-inf logit gives a NaN value (not a finite limit such as
// softplus(-inf) = 0), so sums over it are NaN too.
template <typename T>
struct BlockTerm {
  T offset, vscale, dscale;
  T* val;
  T* der;
};

template <Map M, bool kDer, typename T>
void map_block(const T* __restrict x, int64_t n, T offset, T vscale, T dscale, T* __restrict val, T* __restrict der) {
  for (int64_t i = 0; i < n; ++i) {
    T d;
    const T f = apply_map<M>(x[i], d);
    val[i] = vscale * (f + offset) + lossmath::nan_unless_finite(x[i]);
    if constexpr (kDer) der[i] = dscale * d;
  }
}

// Two maps for which shares_core holds (softplus, softplus_neg), from one core per element.
template <Map M1, Map M2, bool kDer1, bool kDer2, typename T>
void pair_block(const T* __restrict x, int64_t n, T offset1, T vscale1, T dscale1, T* __restrict val1,
                T* __restrict der1, T offset2, T vscale2, T dscale2, T* __restrict val2, T* __restrict der2) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const auto core = lossmath::softplus_core(v);
    T d1, d2;
    const T f1 = from_core<M1>(v, core, d1);
    const T f2 = from_core<M2>(v, core, d2);
    const T poison = lossmath::nan_unless_finite(v);
    val1[i] = vscale1 * (f1 + offset1) + poison;
    val2[i] = vscale2 * (f2 + offset2) + poison;
    if constexpr (kDer1) der1[i] = dscale1 * d1;
    if constexpr (kDer2) der2[i] = dscale2 * d2;
  }
}

template <typename T>
using SingleFn = void (*)(const T*, int64_t, T, T, T, T*, T*);
template <typename T>
using PairFn = void (*)(const T*, int64_t, T, T, T, T*, T*, T, T, T, T*, T*);

template <typename T, int... Ms>
constexpr std::array<std::array<SingleFn<T>, 2>, sizeof...(Ms)> single_table(std::integer_sequence<int, Ms...>) {
  return {{{&map_block<static_cast<Map>(Ms), false, T>, &map_block<static_cast<Map>(Ms), true, T>}...}};
}

template <typename T>
SingleFn<T> single_fn(int map, bool der) {
  static constexpr auto table = single_table<T>(std::make_integer_sequence<int, static_cast<int>(Map::kCount)>());
  if (map < 0 || map >= static_cast<int>(Map::kCount)) throw std::invalid_argument("unknown ratio map id");
  return table[map][der];
}

// The pairs that share a core, by derivative flags; (softplus, softplus_neg) is the only one.
template <typename T>
PairFn<T> pair_fn(bool der1, bool der2) {
  constexpr Map a = Map::kSoftplus, b = Map::kSoftplusNeg;
  static constexpr PairFn<T> table[2][2] = {{&pair_block<a, b, false, false, T>, &pair_block<a, b, false, true, T>},
                                            {&pair_block<a, b, true, false, T>, &pair_block<a, b, true, true, T>}};
  return table[der1][der2];
}

// A term alone, or two terms on maps that share a core (first = softplus, second = softplus_neg).
struct Step {
  int first, second;  // second < 0: alone
};

bool is_softplus_id(int map) {
  return map == static_cast<int>(Map::kSoftplus) || map == static_cast<int>(Map::kSoftplusNeg);
}

// Pairs each softplus term with a softplus_neg term of the same input where there is one.
std::vector<Step> plan_steps(const std::vector<int>& maps) {
  const int k = static_cast<int>(maps.size());
  std::vector<bool> taken(k, false);
  std::vector<Step> steps;
  for (int j = 0; j < k; ++j) {
    if (taken[j]) continue;
    taken[j] = true;
    Step step{j, -1};
    for (int m = j + 1; m < k && is_softplus_id(maps[j]); ++m) {
      if (!taken[m] && is_softplus_id(maps[m]) && maps[m] != maps[j]) {
        taken[m] = true;
        step = maps[j] == static_cast<int>(Map::kSoftplus) ? Step{j, m} : Step{m, j};
        break;
      }
    }
    steps.push_back(step);
  }
  return steps;
}

}  // namespace

template <typename T>
void ratio_terms(const T* x, int64_t n, const std::vector<RatioTerm<T>>& terms, int threads, double* sums) {
  const int k = static_cast<int>(terms.size());
  std::vector<int> maps;
  for (const auto& t : terms) {
    single_fn<T>(t.map, false);  // validates the id
    maps.push_back(t.map);
  }
  const std::vector<Step> steps = plan_steps(maps);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partials(chunks * k, 0.0);
  for_each_chunk(chunks, threads, [&](int64_t c) {
    T scratch[2][kBlock];
    const int64_t chunk_end = std::min(n, (c + 1) * kChunk);
    for (int64_t b = c * kChunk; b < chunk_end; b += kBlock) {
      const int64_t len = std::min(kBlock, chunk_end - b);
      const auto block_term = [&](int j, T* own_scratch) {
        const RatioTerm<T>& t = terms[j];
        return BlockTerm<T>{T(t.offset), t.values != nullptr ? T(t.value_scale) : T(1), T(t.deriv_scale),
                            t.values != nullptr ? t.values + b : own_scratch,
                            t.derivs != nullptr ? t.derivs + b : nullptr};
      };
      const auto add_sum = [&](int j, const T* own_scratch) {
        if (terms[j].values == nullptr) partials[c * k + j] += sum_block(own_scratch, len);
      };
      for (const Step& s : steps) {
        const BlockTerm<T> p = block_term(s.first, scratch[0]);
        if (s.second < 0) {
          single_fn<T>(maps[s.first], p.der != nullptr)(x + b, len, p.offset, p.vscale, p.dscale, p.val, p.der);
        } else {
          const BlockTerm<T> q = block_term(s.second, scratch[1]);
          pair_fn<T>(p.der != nullptr, q.der != nullptr)(x + b, len, p.offset, p.vscale, p.dscale, p.val, p.der,
                                                          q.offset, q.vscale, q.dscale, q.val, q.der);
          add_sum(s.second, scratch[1]);
        }
        add_sum(s.first, scratch[0]);
      }
    }
  });
  sum_partials(partials, chunks, k, sums);
}

template void ratio_terms<float>(const float*, int64_t, const std::vector<RatioTerm<float>>&, int, double*);
template void ratio_terms<double>(const double*, int64_t, const std::vector<RatioTerm<double>>&, int, double*);

}  // namespace implicitdiv

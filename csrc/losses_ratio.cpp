#include "losses_ratio.h"

#include <array>
#include <stdexcept>

#include "losses_driver.h"
#include "losses_maps.h"

namespace implicitdiv {

namespace {

constexpr int64_t kBlock = 1024;          // elements per cache-resident block
constexpr int64_t kChunk = 16 * kBlock;   // elements per partial sum

template <Map M, typename T>
void map_block(const T* __restrict x, int64_t n, T offset, T vscale, T dscale, T* __restrict val,
               T* __restrict der) {
  if (der != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      T d;
      const T f = apply_map<M>(x[i], d);
      val[i] = vscale * (f + offset);
      der[i] = dscale * d;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      T d;
      val[i] = vscale * (apply_map<M>(x[i], d) + offset);
    }
  }
}

template <typename T>
using BlockFn = void (*)(const T*, int64_t, T, T, T, T*, T*);

template <typename T, int... Ms>
constexpr std::array<BlockFn<T>, sizeof...(Ms)> block_table(std::integer_sequence<int, Ms...>) {
  return {&map_block<static_cast<Map>(Ms), T>...};
}

template <typename T>
BlockFn<T> block_fn(int map) {
  static constexpr auto table = block_table<T>(std::make_integer_sequence<int, static_cast<int>(Map::kCount)>());
  if (map < 0 || map >= static_cast<int>(Map::kCount)) throw std::invalid_argument("unknown ratio map id");
  return table[map];
}

}  // namespace

template <typename T>
void ratio_terms(const T* x, int64_t n, const std::vector<RatioTerm<T>>& terms, int threads, double* sums) {
  const int k = static_cast<int>(terms.size());
  std::vector<BlockFn<T>> fns;
  for (const auto& t : terms) fns.push_back(block_fn<T>(t.map));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partials(chunks * k, 0.0);
  for_each_chunk(chunks, threads, [&](int64_t c) {
    T scratch[kBlock];
    const int64_t chunk_end = std::min(n, (c + 1) * kChunk);
    for (int64_t b = c * kChunk; b < chunk_end; b += kBlock) {
      const int64_t len = std::min(kBlock, chunk_end - b);
      for (int j = 0; j < k; ++j) {
        const RatioTerm<T>& t = terms[j];
        T* val = t.values != nullptr ? t.values + b : scratch;
        T* der = t.derivs != nullptr ? t.derivs + b : nullptr;
        fns[j](x + b, len, T(t.offset), t.values != nullptr ? T(t.value_scale) : T(1), T(t.deriv_scale), val, der);
        if (t.values == nullptr) partials[c * k + j] += sum_block(scratch, len);
      }
    }
  });
  sum_partials(partials, chunks, k, sums);
}

template void ratio_terms<float>(const float*, int64_t, const std::vector<RatioTerm<float>>&, int, double*);
template void ratio_terms<double>(const double*, int64_t, const std::vector<RatioTerm<double>>&, int, double*);

}  // namespace implicitdiv

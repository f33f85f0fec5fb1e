// Running independent work items on a few std::threads (no OpenMP: torch already runs its own
// OpenMP runtime). Items are claimed from an atomic counter; each item writes only its own
// outputs, so the result is the same whichever thread ran which item.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace implicitdiv {

// fn(item, worker) for every item in [0, items), on up to `workers` threads (worker in [0, workers)).
template <typename Fn>
void parallel_items(int64_t items, int workers, Fn&& fn) {
  workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(workers, items)));
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_lock;
  auto work = [&](int worker) {
    try {
      for (int64_t item = next++; item < items; item = next++) fn(item, worker);
    } catch (...) {
      std::lock_guard<std::mutex> guard(failure_lock);
      if (!failure) failure = std::current_exception();
      next = items;
    }
  };
  if (workers == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool) t.join();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace implicitdiv

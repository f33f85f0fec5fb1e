// Running independent work items on a few std::threads (no OpenMP: torch already runs its own
// OpenMP runtime). Items are claimed from an atomic counter; each item writes only its own
// outputs, so the result is the same whichever thread ran which item.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace implicitdiv {

// fn(item, worker) for every item in [0, items), on up to `workers` threads (worker in [0, workers)).
template <typename Fn>
void parallel_items(int64_t items, int workers, Fn&& fn) {
  workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(workers, items)));
  struct alignas(64) Counter {  // a cache line of its own: workers write it, and read what lies near it
    std::atomic<int64_t> value{0};
    char pad[64 - sizeof(std::atomic<int64_t>)];
  } counter;
  std::atomic<int64_t>& next = counter.value;
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

// One State per worker, constructed by the worker on first use, so that it lives in memory that
// thread allocated (no cache line shared with another worker's state).
template <typename State>
class PerWorker {
 public:
  explicit PerWorker(int workers) : states_(static_cast<size_t>(std::max(workers, 1))) {}
  State& operator[](int worker) {
    auto& s = states_[worker];
    if (!s) s.reset(new State());
    return *s;
  }

 private:
  std::vector<std::unique_ptr<State>> states_;
};

}  // namespace implicitdiv

// Running independent work items on a few threads. Items are claimed from an atomic counter; each
// item writes only its own outputs, so the result is the same whichever thread ran which item.
//
// The team is either std::threads started for the call, or, once implicitdiv has found that this
// module's OpenMP runtime is the one torch already runs (one libgomp in the process; see
// implicitdiv/fused/cpp/threads.py), that runtime's threads. Torch's OpenMP workers keep spinning
// for a while after each torch op; std::threads started then share the cores with them (a small call
// right after torch work took twice as long), while an OpenMP team is made of those very workers.
// A second OpenMP runtime is never used: with two in the process the std::threads stay.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace implicitdiv {

// Whether teams come from the OpenMP runtime (false until implicitdiv turns it on).
inline std::atomic<bool>& team_from_openmp() {
  static std::atomic<bool> flag{false};
  return flag;
}

inline bool openmp_built() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

// work(worker) on a team of up to `workers` threads, the calling thread among them; returns when all
// have returned. An OpenMP team may be smaller than asked for: callers must not assume every
// worker index runs.
template <typename Work>
void run_team(int workers, const Work& work) {
  if (workers <= 1) {
    work(0);
    return;
  }
#ifdef _OPENMP
  if (team_from_openmp()) {
#pragma omp parallel num_threads(workers)
    work(omp_get_thread_num());
    return;
  }
#endif
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
}

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
  run_team(workers, work);
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

// util::make_recycled<T>(args…): a T in storage kept for reuse by the thread that frees it, for objects
// made and destroyed once per request whose size is above what glibc's per-thread cache serves (1,032
// bytes), so that each one would otherwise cost malloc's slow path and a free that consolidates. Held
// by a unique_ptr whose deleter destroys the T and keeps its storage (up to kKeep blocks per thread,
// the rest freed). Also keeps such objects out of coroutine frames, which Asio recycles only up to
// 1,020 bytes.
//
// Thread-safety: each thread has its own cache; an object may be freed on another thread than the one
// that made it (its storage then joins that thread's cache). A thread's cache is freed when the thread
// ends; storage freed after that is returned to the heap.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace lagoon::util {

namespace detail {

template <std::size_t Size>
class BlockCache {
 public:
  static constexpr std::size_t kKeep = 128;

  static void* acquire() {
    Cache& c = cache();
    if (c.count == 0) return ::operator new(Size);
    return c.blocks[--c.count];
  }
  static void release(void* p) noexcept {
    if (!alive()) return ::operator delete(p);
    Cache& c = cache();
    if (c.count == kKeep) return ::operator delete(p);
    c.blocks[c.count++] = p;
  }

 private:
  struct Cache {
    void* blocks[kKeep];
    std::size_t count = 0;
    Cache() { alive() = true; }
    ~Cache() {
      alive() = false;  // trivially destructible: still readable by frees that come after this
      while (count > 0) ::operator delete(blocks[--count]);
    }
  };
  static bool& alive() {
    thread_local bool flag = false;
    return flag;
  }
  static Cache& cache() {
    thread_local Cache c;
    return c;
  }
};

}  // namespace detail

template <class T>
struct RecycledDelete {
  void operator()(T* p) const noexcept {
    p->~T();
    detail::BlockCache<sizeof(T)>::release(p);
  }
};

template <class T>
using Recycled = std::unique_ptr<T, RecycledDelete<T>>;

template <class T, class... Args>
Recycled<T> make_recycled(Args&&... args) {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "storage comes from operator new(size)");
  void* mem = detail::BlockCache<sizeof(T)>::acquire();
  try {
    return Recycled<T>(::new (mem) T(std::forward<Args>(args)...));
  } catch (...) {
    detail::BlockCache<sizeof(T)>::release(mem);
    throw;
  }
}

}  // namespace lagoon::util

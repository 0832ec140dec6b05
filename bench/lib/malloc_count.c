// LD_PRELOAD shim for bench/mallocs.sh: counts malloc/calloc/realloc/aligned allocations and frees per
// thread, and on SIGUSR2 appends one line per thread seen — "tid name allocations frees" — to the file
// named by MALLOC_COUNT_OUT. Counting only: every call goes on to glibc's own allocator. Not for
// production; the counters are plain per-thread slots (a thread's own, read racily at a snapshot).
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

#define MAX_THREADS 256
struct slot {
  _Atomic long tid;
  _Atomic unsigned long allocs, frees;
};
static struct slot slots[MAX_THREADS];
static _Atomic int used;
static __thread struct slot* mine;

static struct slot* self(void) {
  if (mine) return mine;
  int i = atomic_fetch_add(&used, 1);
  if (i >= MAX_THREADS) i = MAX_THREADS - 1;  // the rest share the last slot
  mine = &slots[i];
  atomic_store(&mine->tid, (long)syscall(SYS_gettid));
  return mine;
}

void* malloc(size_t n) { atomic_fetch_add_explicit(&self()->allocs, 1, memory_order_relaxed); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { atomic_fetch_add_explicit(&self()->allocs, 1, memory_order_relaxed); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { atomic_fetch_add_explicit(&self()->allocs, 1, memory_order_relaxed); return __libc_realloc(p, n); }
void* memalign(size_t a, size_t n) { atomic_fetch_add_explicit(&self()->allocs, 1, memory_order_relaxed); return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p = memalign(a, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) {
  if (!p) return;
  atomic_fetch_add_explicit(&self()->frees, 1, memory_order_relaxed);
  __libc_free(p);
}

// Async-signal-safe enough for a bench: open, read, write, and formatting by hand.
static char* put_u(char* o, unsigned long v) {
  char d[24];
  int n = 0;
  do d[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *o++ = d[--n];
  return o;
}

static void dump(int sig) {
  (void)sig;
  const char* path = getenv("MALLOC_COUNT_OUT");
  if (!path) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  int n = atomic_load(&used);
  if (n > MAX_THREADS) n = MAX_THREADS;
  for (int i = 0; i < n; ++i) {
    char line[160], comm[64] = "?", procpath[64], *o = line;
    char* p = procpath;
    memcpy(p, "/proc/self/task/", 16);
    p = put_u(p + 16, (unsigned long)atomic_load(&slots[i].tid));
    memcpy(p, "/comm", 6);
    int c = open(procpath, O_RDONLY);
    if (c >= 0) {
      ssize_t r = read(c, comm, sizeof comm - 1);
      close(c);
      comm[r > 0 ? r : 0] = 0;
      for (char* q = comm; *q; ++q)
        if (*q == '\n' || *q == ' ') *q = 0;
      if (!comm[0]) strcpy(comm, "?");
    }
    o = put_u(o, (unsigned long)atomic_load(&slots[i].tid));
    *o++ = ' ';
    size_t cl = strlen(comm);
    memcpy(o, comm, cl);
    o += cl;
    *o++ = ' ';
    o = put_u(o, atomic_load(&slots[i].allocs));
    *o++ = ' ';
    o = put_u(o, atomic_load(&slots[i].frees));
    *o++ = '\n';
    (void)!write(fd, line, (size_t)(o - line));
  }
  (void)!write(fd, "--\n", 3);
  close(fd);
}

__attribute__((constructor)) static void install(void) { signal(SIGUSR2, dump); }

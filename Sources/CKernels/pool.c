#include "qwen_kernels.h"

// A small thread pool for the kernels' parallel loops: persistent workers that spin for a while
// (SPIN_NS) after each job before sleeping, so that the ~300 parallel loops of a decode step (most
// of them 20–300 µs long) do not each pay a thread wake-up (tens of µs through a condition
// variable or Dispatch). As ONNX Runtime's and ggml's pools do; one job at a time.
//
// The spin lasts 2 ms: the single-threaded stretches between a decode step's parallel loops
// (rotary, reshapes, attention set-up, the sampler between tokens) often last longer than the
// 0.12 ms spun before, and a worker woken from sleep starts its half of the next GEMV tens of µs
// late, which the caller then waits for (`perf`: the caller's wait in qk_pool_run 6.2% -> 3.9%
// of a decode's samples; decode-speed median 39.7 -> 41.2 tok/s over 6 alternating runs).

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

// The spin-wait hint: lets the core's sibling thread (SMT) run and saves power while spinning.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
static const long SPIN_NS = 2000000;   // how long an idle worker spins before sleeping

static long monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

// Publishing a job is a seqlock: `generation` is odd while the job fields are written and even
// once they are stable. A worker that sees a new even generation registers in `active`, checks
// the generation again (a job that changed meanwhile is skipped) and only then reads the fields;
// the submitter makes the generation odd, waits for `active` to drain, writes, and makes it even.
// So no worker reads a job description while it is being replaced, and a worker that wakes late
// finds the job's indices used up and does nothing.

static struct {
    pthread_mutex_t submit;             // one job at a time
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic unsigned long generation;   // odd while a job is written
    _Atomic int active;                 // workers reading or running the current job
    _Atomic size_t next;                // next task index to claim
    _Atomic size_t finished;            // tasks done
    _Atomic int sleepers;
    size_t count;
    qk_task_fn fn;
    void *ctx;
    int workers;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_requested = 0;
static _Thread_local int inside_job = 0;

static void run_tasks(void) {
    const size_t count = pool.count;
    size_t i;
    while ((i = atomic_fetch_add(&pool.next, 1)) < count) {
        pool.fn(pool.ctx, i);
        atomic_fetch_add(&pool.finished, 1);
    }
}

static void *worker(void *arg) {
    (void)arg;
    inside_job = 1;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g;
        unsigned spins = 0;
        long spin_start = monotonic_ns();
        while ((g = atomic_load(&pool.generation)) == seen || (g & 1)) {
            // The clock is read every 64 pauses (~2 µs).
            if (++spins % 64 != 0 || monotonic_ns() - spin_start < SPIN_NS) { CPU_RELAX(); continue; }
            pthread_mutex_lock(&pool.sleep_lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((g = atomic_load(&pool.generation)) == seen || (g & 1))
                pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_lock);
            spins = 0;
            spin_start = monotonic_ns();
        }
        atomic_fetch_add(&pool.active, 1);
        if (atomic_load(&pool.generation) == g) {
            seen = g;
            run_tasks();
        }
        atomic_fetch_sub(&pool.active, 1);
    }
    return NULL;
}

static void start_workers(void) {
    int n = pool_requested - 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, NULL) == 0) pool.workers++;
        pthread_attr_destroy(&attr);
    }
}

int qk_pool_run(size_t count, int threads, qk_task_fn fn, void *ctx) {
    if (count == 0) return 1;
    // Nested loops (a task that runs a parallel loop) and concurrent callers get 0: the caller
    // runs the loop another way.
    if (inside_job || threads < 2) return 0;
    if (pthread_mutex_trylock(&pool.submit) != 0) return 0;
    pool_requested = threads;
    pthread_once(&pool_once, start_workers);
    if (pool.workers == 0) {
        pthread_mutex_unlock(&pool.submit);
        return 0;
    }
    atomic_fetch_add(&pool.generation, 1);   // odd: being written
    while (atomic_load(&pool.active) > 0) CPU_RELAX();
    pool.count = count;
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.finished, 0);
    atomic_fetch_add(&pool.generation, 1);   // even: published
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    inside_job = 1;
    run_tasks();
    inside_job = 0;
    while (atomic_load(&pool.finished) < count) CPU_RELAX();
    pthread_mutex_unlock(&pool.submit);
    return 1;
}

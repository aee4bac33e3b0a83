#include "qwen_kernels.h"

// A small thread pool for the kernels' parallel loops: persistent workers that spin for a while
// (SPIN_NS) after each job before sleeping, so that the ~300 parallel loops of a decode step (most
// of them 20–300 µs long) do not each pay a thread wake-up (tens of µs through a condition
// variable or Dispatch). As ONNX Runtime's and ggml's pools do; one job at a time per pool, and
// as many pools as the library wants (one per loaded model: two models never wait for each other).
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

struct qk_pool {
    pthread_mutex_t submit;             // one job at a time
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic unsigned long generation;   // odd while a job is written
    _Atomic int active;                 // workers reading or running the current job
    _Atomic size_t next;                // next task index to claim
    _Atomic size_t finished;            // tasks done
    _Atomic int sleepers;
    _Atomic int stopping;               // set by qk_pool_destroy
    _Atomic unsigned long jobs_run, jobs_declined;
    size_t count;
    qk_task_fn fn;
    void *ctx;
    int threads, started, workers;
    pthread_t ids[MAX_WORKERS];
};

// Set while this thread runs a job's tasks (any pool's): a loop started inside is not taken.
static _Thread_local int inside_job = 0;
static _Thread_local void *current = NULL;

static void run_tasks(struct qk_pool *pool) {
    const size_t count = pool->count;
    size_t i;
    while ((i = atomic_fetch_add(&pool->next, 1)) < count) {
        pool->fn(pool->ctx, i);
        atomic_fetch_add(&pool->finished, 1);
    }
}

// An idle worker spins SPIN_NS, then sleeps on the condition variable until a job (or the end)
// is published: a pool nobody uses costs no CPU.
static void *worker(void *arg) {
    struct qk_pool *pool = arg;
    inside_job = 1;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g;
        unsigned spins = 0;
        long spin_start = monotonic_ns();
        while ((g = atomic_load(&pool->generation)) == seen || (g & 1)) {
            // The clock is read every 64 pauses (~2 µs).
            if (++spins % 64 != 0 || monotonic_ns() - spin_start < SPIN_NS) { CPU_RELAX(); continue; }
            pthread_mutex_lock(&pool->sleep_lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while ((g = atomic_load(&pool->generation)) == seen || (g & 1))
                pthread_cond_wait(&pool->wake, &pool->sleep_lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->sleep_lock);
            spins = 0;
            spin_start = monotonic_ns();
        }
        if (atomic_load(&pool->stopping)) return NULL;
        atomic_fetch_add(&pool->active, 1);
        if (atomic_load(&pool->generation) == g) {
            seen = g;
            run_tasks(pool);
        }
        atomic_fetch_sub(&pool->active, 1);
    }
}

// Publishes a new generation (the submitter holds `submit`) and wakes the sleepers.
static void publish(struct qk_pool *pool) {
    atomic_fetch_add(&pool->generation, 1);   // even: published
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->sleep_lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->sleep_lock);
    }
}

qk_pool *qk_pool_create(int threads) {
    struct qk_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pthread_mutex_init(&pool->submit, NULL);
    pthread_mutex_init(&pool->sleep_lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = threads < 1 ? 1 : threads;
    return pool;
}

void qk_pool_destroy(qk_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->submit);
    atomic_store(&pool->stopping, 1);
    atomic_fetch_add(&pool->generation, 1);
    publish(pool);
    pthread_mutex_unlock(&pool->submit);
    for (int i = 0; i < pool->workers; i++) pthread_join(pool->ids[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->sleep_lock);
    pthread_mutex_destroy(&pool->submit);
    free(pool);
}

int qk_pool_threads(const qk_pool *pool) { return pool ? pool->threads : 1; }

void qk_pool_counts(qk_pool *pool, unsigned long *run, unsigned long *declined) {
    *run = atomic_load(&pool->jobs_run);
    *declined = atomic_load(&pool->jobs_declined);
}

int qk_pool_run(qk_pool *pool, size_t count, qk_task_fn fn, void *ctx) {
    if (count == 0) return 1;
    // Nested loops (a task that runs a parallel loop) and concurrent callers get 0: the caller
    // runs the loop another way.
    if (!pool || inside_job || pool->threads < 2) return 0;
    if (pthread_mutex_trylock(&pool->submit) != 0) {
        atomic_fetch_add(&pool->jobs_declined, 1);
        return 0;
    }
    if (!pool->started) {
        pool->started = 1;
        const int n = pool->threads - 1 < MAX_WORKERS ? pool->threads - 1 : MAX_WORKERS;
        for (int i = 0; i < n; i++)
            if (pthread_create(&pool->ids[pool->workers], NULL, worker, pool) == 0) pool->workers++;
    }
    if (pool->workers == 0) {
        pthread_mutex_unlock(&pool->submit);
        return 0;
    }
    atomic_fetch_add(&pool->generation, 1);   // odd: being written
    while (atomic_load(&pool->active) > 0) CPU_RELAX();
    pool->count = count;
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->next, 0);
    atomic_store(&pool->finished, 0);
    publish(pool);
    inside_job = 1;
    run_tasks(pool);
    inside_job = 0;
    while (atomic_load(&pool->finished) < count) CPU_RELAX();
    atomic_fetch_add(&pool->jobs_run, 1);
    pthread_mutex_unlock(&pool->submit);
    return 1;
}

void *qk_pool_current_owner(void) { return current; }

void *qk_pool_set_current_owner(void *owner) {
    void *previous = current;
    current = owner;
    return previous;
}

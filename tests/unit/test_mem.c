/*
 * test_mem.c: the per-thread size-class allocator (proxy/mem.c).
 *
 * Every class boundary (0, each class size, +1, -1), 16-byte alignment, large
 * blocks and realloc across the small/large line, seeded random
 * alloc/realloc/free sequences whose blocks carry a pattern checked before each
 * realloc and free, LIFO reuse and dirty-block calloc, the per-class cap, frees
 * on another thread, the thread-exit trim, and the abort on a double free. The
 * checks that look at the cache itself are skipped when mem.h passes through to
 * malloc (sanitizer builds), where only the malloc contract is checked.
 */
#include "../../proxy/mem.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static uint64_t xs_state = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift64(void)
{
    return tap_xorshift64(&xs_state);
}

static int is_aligned(const void *p)
{
    return ((uintptr_t)p & (MEM_ALIGN - 1)) == 0;
}

static unsigned char pattern(uint32_t seed, size_t i)
{
    return (unsigned char)(seed * 2654435761u + i * 31u + (i >> 8));
}

static void fill(void *p, size_t n, uint32_t seed)
{
    unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        b[i] = pattern(seed, i);
}

static int check(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(seed, i))
            return 0;
    return 1;
}

/* The class of exactly <size> bytes. */
static unsigned class_index(size_t size)
{
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        if (mem_class_size(c) == size)
            return c;
    return MEM_N_CLASSES;
}

/* The class a request of <size> bytes should land in, from the table. */
static size_t expected_class_size(size_t size)
{
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        if (size <= mem_class_size(c))
            return mem_class_size(c);
    return 0;
}

static void test_classes(void)
{
    int bad = 0;

    for (unsigned c = 0; c < MEM_N_CLASSES; c++) {
        size_t s = mem_class_size(c);
        if (s % MEM_ALIGN != 0 || (c > 0 && s <= mem_class_size(c - 1)))
            bad++;
    }
    ok(!bad, "class sizes are increasing multiples of %d", MEM_ALIGN);
    ok(mem_class_size(0) == 16 && mem_class_size(15) == 256 && mem_class_size(16) == 320 &&
           mem_class_size(19) == 512 && mem_class_size(20) == 640 &&
           mem_class_size(MEM_N_CLASSES - 1) == MEM_MAX_SMALL,
       "16..256 by 16, then four classes per doubling up to %d", MEM_MAX_SMALL);
    bad = 0;
    for (unsigned c = 16; c < MEM_N_CLASSES; c++) {
        size_t s = mem_class_size(c), p = mem_class_size(c - 1);
        if ((s - p) * 4 > p) /* slack at most 25 % past 256 */
            bad++;
    }
    ok(!bad, "past 256, a class is at most 25 %% above the one before");
    ok(mem_class_size(MEM_N_CLASSES) == 0 && mem_class_cap(MEM_N_CLASSES) == 0,
       "no class past the last");
    if (MEM_PASSTHROUGH) {
        ok(mem_class_cap(0) == 0, "passthrough: no caps");
        return;
    }
    bad = 0;
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        if (mem_class_cap(c) < 16 || mem_class_cap(c) > 256 ||
            (c > 0 && mem_class_cap(c) > mem_class_cap(c - 1)))
            bad++;
    ok(!bad, "caps within 16..256 and not growing with the size");
}

/* Sizes 0, each class size, one less and one more. */
static void test_boundaries(void)
{
    size_t sizes[3 * MEM_N_CLASSES + 1];
    size_t n = 0;
    int bad_align = 0, bad_size = 0, bad_data = 0;

    sizes[n++] = 0;
    for (unsigned c = 0; c < MEM_N_CLASSES; c++) {
        sizes[n++] = mem_class_size(c) - 1;
        sizes[n++] = mem_class_size(c);
        sizes[n++] = mem_class_size(c) + 1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = sizes[i];
        unsigned char *p = mem_malloc(s);
        size_t u = mem_usable_size(p);

        if (p == NULL || !is_aligned(p))
            bad_align++;
        if (u < s || (!MEM_PASSTHROUGH && s <= MEM_MAX_SMALL && u != expected_class_size(s)))
            bad_size++;
        fill(p, u, (uint32_t)s);
        if (!check(p, u, (uint32_t)s))
            bad_data++;
        mem_free(p);
    }
    ok(!bad_align, "every boundary size: aligned, not NULL (%zu sizes)", n);
    ok(!bad_size, "every boundary size: usable size is its class (or more when large)");
    ok(!bad_data, "every boundary size: the whole usable size holds data");

    int bad_map = 0;
    for (size_t sz = 0; sz <= MEM_MAX_SMALL + 1; sz++) {
        void *p = mem_malloc(sz);
        size_t u = mem_usable_size(p);
        bad_map += p == NULL || !is_aligned(p) || u < sz ||
                   (!MEM_PASSTHROUGH && sz <= MEM_MAX_SMALL && u != expected_class_size(sz));
        mem_free(p);
    }
    ok(!bad_map, "every size 0..%d maps to the smallest class that holds it", MEM_MAX_SMALL);

    void *z1 = mem_malloc(0), *z2 = mem_malloc(0);
    ok(z1 != NULL && z2 != NULL && z1 != z2, "malloc(0) gives distinct blocks");
    mem_free(z1);
    mem_free(z2);
    mem_free(NULL);
    ok(1, "free(NULL) is a no-op");
}

static void test_large(void)
{
    static const size_t sizes[] = {MEM_MAX_SMALL + 1, 8192, 65536 + 7, 1u << 20};
    int bad = 0;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t s = sizes[i];
        unsigned char *p = mem_malloc(s), *q;

        if (p == NULL || !is_aligned(p) || mem_usable_size(p) < s) {
            bad++;
            continue;
        }
        fill(p, s, 7);
        q = mem_realloc(p, 2 * s); /* large -> large */
        if (q == NULL || !is_aligned(q) || !check(q, s, 7))
            bad++;
        p = mem_realloc(q, 100); /* large -> small */
        if (p == NULL || !is_aligned(p) || !check(p, 100, 7))
            bad++;
        q = mem_realloc(p, s); /* small -> large */
        if (q == NULL || !is_aligned(q) || !check(q, 100, 7))
            bad++;
        mem_free(q);
    }
    ok(!bad, "large blocks: aligned, realloc large/large, large/small, small/large keep data");

    struct mem_stats st;
    mem_stats_get(&st);
    ok(MEM_PASSTHROUGH || st.n_large > 0, "large allocations are counted (%llu)",
       (unsigned long long)st.n_large);

    if (MEM_PASSTHROUGH)
        return; /* ASan reports these as errors (allocator_may_return_null=0) */
    ok(mem_calloc(SIZE_MAX / 2, 3) == NULL, "calloc overflow gives NULL");
    ok(mem_malloc(SIZE_MAX - 4) == NULL, "malloc(SIZE_MAX - 4) gives NULL");
    ok(mem_realloc(mem_malloc(8), SIZE_MAX - 4) == NULL, "realloc to SIZE_MAX - 4 gives NULL");
}

static void test_reuse(void)
{
    if (MEM_PASSTHROUGH) {
        unsigned char *p = mem_calloc(3, 20);
        int zero = p != NULL;
        for (size_t i = 0; p != NULL && i < 60; i++)
            zero &= p[i] == 0;
        ok(zero, "passthrough: calloc zeroes");
        mem_free(p);
        return;
    }
    unsigned char *p = mem_malloc(60), *q;
    memset(p, 0xa5, 64);
    mem_free(p);
    q = mem_calloc(3, 20);
    ok(q == p, "LIFO: the last block freed in a class comes back first");
    int zero = 1;
    for (size_t i = 0; i < 60; i++)
        zero &= q[i] == 0;
    ok(zero, "calloc zeroes a recycled dirty block");
    ok(mem_realloc(q, 50) == q && mem_realloc(q, 64) == q, "realloc within the class stays put");
    p = mem_realloc(q, 65);
    ok(p != q && mem_usable_size(p) == 80, "realloc past the class moves to the next one");
    mem_free(p);
}

/* Seeded random alloc/realloc/free over a set of slots, checking each block's
 * pattern before it is resized or freed. */
#define SLOTS 512
static void test_random(void)
{
    struct slot {
        unsigned char *p;
        size_t n;
        uint32_t seed;
    } s[SLOTS];
    int bad_data = 0, bad_align = 0, bad_null = 0;
    uint32_t gen = 1;

    memset(s, 0, sizeof(s));
    for (int it = 0; it < 200000; it++) {
        struct slot *e = &s[xorshift64() % SLOTS];
        uint64_t r = xorshift64();
        size_t n;

        /* mostly small, sometimes around a boundary, rarely large */
        switch (r % 16) {
        case 0:
            n = MEM_MAX_SMALL + (r >> 8) % 20000;
            break;
        case 1:
        case 2: {
            size_t cs = mem_class_size((unsigned)((r >> 8) % MEM_N_CLASSES));
            n = cs - 1 + (r >> 16) % 3;
            break;
        }
        default:
            n = (r >> 8) % 600;
        }
        if (e->p == NULL) {
            e->p = (r >> 40) % 4 == 0 ? mem_calloc(1, n) : mem_malloc(n);
            if (e->p != NULL && (r >> 40) % 4 == 0) {
                for (size_t i = 0; i < n; i++)
                    bad_data += e->p[i] != 0;
            }
        } else if ((r >> 40) % 3 == 0) {
            if (!check(e->p, e->n, e->seed))
                bad_data++;
            unsigned char *q = mem_realloc(e->p, n);
            if (q == NULL) {
                bad_null++;
                continue;
            }
            if (!check(q, e->n < n ? e->n : n, e->seed))
                bad_data++;
            e->p = q;
        } else {
            if (!check(e->p, e->n, e->seed))
                bad_data++;
            mem_free(e->p);
            e->p = NULL;
            continue;
        }
        if (e->p == NULL) {
            bad_null++;
            continue;
        }
        if (!is_aligned(e->p))
            bad_align++;
        e->n = n;
        e->seed = gen++;
        fill(e->p, n, e->seed);
    }
    for (size_t i = 0; i < SLOTS; i++) {
        if (s[i].p != NULL && !check(s[i].p, s[i].n, s[i].seed))
            bad_data++;
        mem_free(s[i].p);
    }
    ok(!bad_null, "random sequence: no NULL");
    ok(!bad_align, "random sequence: every block aligned");
    ok(!bad_data, "random sequence: every block kept its content (%d bad)", bad_data);

    struct mem_stats st;
    int over = 0;
    mem_stats_get(&st);
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        over += st.n_cached[c] > mem_class_cap(c);
    ok(!over, "random sequence: no class holds more than its cap");
}

static void test_cap(void)
{
    struct mem_stats a, b;
    const unsigned c = class_index(1024);
    size_t cap = mem_class_cap(c), n = cap + 10;
    void **v = calloc(n, sizeof(*v));

    mem_trim();
    mem_stats_get(&a);
    ok(a.bytes_cached == 0, "trim empties every list");
    for (size_t i = 0; i < n; i++)
        v[i] = mem_malloc(mem_class_size(c));
    for (size_t i = 0; i < n; i++)
        mem_free(v[i]);
    mem_stats_get(&b);
    if (MEM_PASSTHROUGH) {
        ok(b.n_cached[c] == 0 && b.n_release == 0, "passthrough: nothing cached");
    } else {
        ok(b.n_cached[c] == cap, "class %u keeps its cap of %zu free blocks", c, cap);
        ok(b.n_release - a.n_release == 10, "the 10 frees past the cap go back to free()");
        ok(b.n_refill - a.n_refill == n, "%zu allocations from empty lists were %zu refills", n, n);
        ok(b.bytes_cached == cap * (MEM_ALIGN + mem_class_size(c)), "bytes cached count headers");
    }
    /* taking them again costs no refill */
    for (size_t i = 0; i < cap; i++)
        v[i] = mem_malloc(mem_class_size(c) - 5);
    mem_stats_get(&a);
    ok(MEM_PASSTHROUGH || (a.n_refill == b.n_refill && a.n_cached[c] == 0),
       "a full list serves %zu allocations without malloc", cap);
    for (size_t i = 0; i < cap; i++)
        mem_free(v[i]);
    free(v);
    mem_trim();
}

/* ---- threads ---- */

#define XN 100
struct xfer {
    void *blocks[XN];
    struct mem_stats st; /* the freeing thread's, before it exits */
};

static void *alloc_thread(void *arg)
{
    struct xfer *x = arg;

    for (size_t i = 0; i < XN; i++) {
        x->blocks[i] = mem_malloc(200);
        fill(x->blocks[i], 200, (uint32_t)i);
    }
    return NULL; /* its (empty) cache is torn down at exit */
}

static void *free_thread(void *arg)
{
    struct xfer *x = arg;
    int bad = 0;

    for (size_t i = 0; i < XN; i++) {
        bad += !check(x->blocks[i], 200, (uint32_t)i);
        mem_free(x->blocks[i]);
    }
    mem_stats_get(&x->st);
    /* reuse what came from the other thread */
    for (size_t i = 0; i < XN; i++)
        x->blocks[i] = mem_malloc(200);
    for (size_t i = 0; i < XN; i++)
        mem_free(x->blocks[i]);
    return (void *)(intptr_t)bad;
}

static void test_cross_thread(void)
{
    struct xfer x;
    pthread_t t;
    void *rv = NULL;

    memset(&x, 0, sizeof(x));
    ok(pthread_create(&t, NULL, alloc_thread, &x) == 0 && pthread_join(t, NULL) == 0,
       "thread A allocated %d blocks and exited", XN);
    ok(pthread_create(&t, NULL, free_thread, &x) == 0 && pthread_join(t, &rv) == 0 && rv == NULL,
       "thread B read and freed them intact, then reused them");
    ok(MEM_PASSTHROUGH || x.st.n_cached[class_index(208)] == XN,
       "B's list for 208 holds the %d blocks (%zu)", XN, x.st.n_cached[class_index(208)]);

    /* freed here, on the main thread, from a dead thread's allocations */
    ok(pthread_create(&t, NULL, alloc_thread, &x) == 0 && pthread_join(t, NULL) == 0,
       "thread C allocated %d blocks and exited", XN);
    int bad = 0;
    for (size_t i = 0; i < XN; i++) {
        bad += !check(x.blocks[i], 200, (uint32_t)i);
        mem_free(x.blocks[i]);
    }
    ok(!bad, "the main thread frees a dead thread's blocks");
    mem_trim();
}

/* A thread that ends with full lists gives them back: the heap does not keep
 * the ~75 KiB it cached (mallinfo2 sums every arena). */
static void *cache_thread(void *arg)
{
    static const size_t sz[] = {16, 256, 1024, 4096};
    void *v[512];

    for (size_t k = 0; k < sizeof(sz) / sizeof(sz[0]); k++) {
        size_t n = mem_class_cap(class_index(sz[k]));
        for (size_t i = 0; i < n; i++)
            v[i] = mem_malloc(sz[k]);
        for (size_t i = 0; i < n; i++)
            mem_free(v[i]);
    }
    struct mem_stats *st = arg;
    mem_stats_get(st);
    return NULL;
}

static void test_thread_exit(void)
{
    struct mem_stats st;
    pthread_t t;

    if (MEM_PASSTHROUGH) {
        ok(1, "passthrough: nothing cached, nothing to free at exit");
        return;
    }
    /* one thread first, so glibc's per-thread arena and tcache exist before we measure */
    pthread_create(&t, NULL, cache_thread, &st);
    pthread_join(t, NULL);
    size_t before = mallinfo2().uordblks;
    pthread_create(&t, NULL, cache_thread, &st);
    pthread_join(t, NULL);
    size_t after = mallinfo2().uordblks;
    ok(st.bytes_cached > 60000, "the thread cached %zu bytes before exiting", st.bytes_cached);
    ok(after < before + 16384, "thread exit freed them (heap in use %zu -> %zu)", before, after);
}

static void test_double_free(void)
{
    if (MEM_PASSTHROUGH) {
        ok(1, "passthrough: the sanitizer reports double frees");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        void *p = mem_malloc(32);
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(1);
        mem_free(p);
        mem_free(p);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "a double free aborts");

    pid = fork();
    if (pid == 0) {
        char *p = malloc(64);
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(1);
        mem_free(p);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "freeing a malloc() block aborts");
}

int main(void)
{
    subtest("classes and caps", test_classes);
    subtest("class boundaries and alignment", test_boundaries);
    subtest("large blocks", test_large);
    subtest("reuse and calloc", test_reuse);
    subtest("random alloc/realloc/free", test_random);
    subtest("per-class cap", test_cap);
    subtest("cross-thread free", test_cross_thread);
    subtest("thread exit", test_thread_exit);
    subtest("misuse", test_double_free);
    mem_trim();
    return done_testing();
}

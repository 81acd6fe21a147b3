/*
 * mem.c: per-thread size-class free lists in front of malloc (see mem.h).
 *
 * A block is one malloc() allocation: a 16-byte struct mem_hdr, then the class
 * size. The header's tag is MEM_TAG_LIVE + class while the block is in use and
 * MEM_TAG_FREE + class while it sits on a list (MEM_TAG_LIVE + MEM_N_CLASSES
 * for a large block), so the free fast path is one subtraction and one compare:
 * anything but a live small block (large, already freed, foreign) takes the
 * slow path, which tells them apart. The list link lives in the header.
 *
 * Each thread's cache starts zeroed: empty lists (malloc misses into
 * mem_refill()) and zero caps (free misses into mem_free_slow()); either miss
 * sets the caps and registers the thread-exit destructor, so the fast paths
 * never test for initialisation.
 */
#include "mem.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-class budget of a thread's free blocks, and the bounds on their count. */
#define MEM_CACHE_BYTES 262144
#define MEM_CAP_MIN 16
#define MEM_CAP_MAX 256
/* 16-byte steps up to here, then four classes per doubling up to MEM_MAX_SMALL. */
#define MEM_MAX_STEP 256
#define MEM_N_STEP_CLASSES (MEM_MAX_STEP / 16)

_Static_assert(MEM_N_STEP_CLASSES + 16 == MEM_N_CLASSES,
               "classes: 16..256 by 16, then 4 a doubling");
_Static_assert(_Alignof(max_align_t) <= MEM_ALIGN, "headers keep max_align_t alignment");

static const uint32_t mem_size[MEM_N_CLASSES] = {
    16,  32,  48,  64,  80,  96,  112, 128,  144,  160,  176,  192,  208,  224,  240,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
};

#if !MEM_PASSTHROUGH

#define MEM_TAG_LIVE 0x6d656d00u /* "mem\0" + class */
#define MEM_TAG_FREE 0x66726500u /* "fre\0" + class */
#define MEM_TAG_LARGE (MEM_TAG_LIVE + MEM_N_CLASSES)

struct mem_hdr {
    union {
        struct mem_hdr *next; /* on a free list */
        uint64_t _pad;        /* 16 bytes on 32-bit targets too */
    };
    uint32_t tag;
    uint32_t _unused;
};
_Static_assert(sizeof(struct mem_hdr) == MEM_ALIGN, "header size is the alignment");

struct mem_bin {
    struct mem_hdr *head;
    uint32_t n;   /* blocks on the list */
    uint32_t lim; /* at most; 0 until the thread's first miss, and after its exit */
};

enum mem_tc_state { MEM_TC_NEW = 0, MEM_TC_ON, MEM_TC_OFF, MEM_TC_N_STATES };

struct mem_tcache {
    struct mem_bin bin[MEM_N_CLASSES];
    uint64_t n_refill, n_release, n_large;
    enum mem_tc_state state; /* OFF: no destructor could be set, or the thread is ending */
};

static _Thread_local struct mem_tcache mem_tc;

static pthread_once_t mem_once = PTHREAD_ONCE_INIT;
static pthread_key_t mem_key;
static int mem_key_ok;

/* <h> is neither a live small block nor a large one: a misuse, never a state. */
__attribute__((noreturn, cold)) static void mem_bad(const struct mem_hdr *h)
{
    fprintf(stderr, "cutover: mem: %s (%p)\n",
            h->tag - MEM_TAG_FREE < MEM_N_CLASSES ? "double free"
                                                  : "pointer not live from mem_malloc",
            (const void *)(h + 1));
    abort();
}

static inline unsigned mem_class_of(size_t size)
{
    if (size <= MEM_MAX_STEP)
        return (unsigned)((size - (size != 0)) >> 4);
    /*
     * Four classes per doubling, as jemalloc: with lg = floor(log2(size - 1))
     * (8..11), the top three bits of size - 1 are 1xx and xx picks the quarter:
     * 257..320 -> 16, 321..384 -> 17, 385..448 -> 18, 449..512 -> 19, 513..640 -> 20.
     */
    unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)size - 1);
    return MEM_N_STEP_CLASSES + (lg - 8) * 4 + (unsigned)(((size - 1) >> (lg - 2)) & 3);
}

static void mem_thread_exit(void *arg)
{
    (void)arg;
    mem_trim();
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        mem_tc.bin[c].lim = 0;
    mem_tc.state = MEM_TC_OFF; /* later frees go to free(), later mallocs to malloc() */
}

static void mem_key_init(void)
{
    mem_key_ok = pthread_key_create(&mem_key, mem_thread_exit) == 0;
}

/* First miss of a thread: arm the destructor, then the caps. Without a
 * destructor the thread caches nothing (its blocks would leak at exit). */
static void mem_tc_init(void)
{
    pthread_once(&mem_once, mem_key_init);
    if (!mem_key_ok || pthread_setspecific(mem_key, &mem_tc) != 0) {
        mem_tc.state = MEM_TC_OFF;
        return;
    }
    for (unsigned c = 0; c < MEM_N_CLASSES; c++)
        mem_tc.bin[c].lim = (uint32_t)mem_class_cap(c);
    mem_tc.state = MEM_TC_ON;
}

__attribute__((noinline)) static void *mem_refill(unsigned c)
{
    struct mem_hdr *h;

    if (mem_tc.state == MEM_TC_NEW)
        mem_tc_init();
    h = malloc(sizeof(*h) + mem_size[c]);
    if (h == NULL)
        return NULL;
    h->tag = MEM_TAG_LIVE + c;
    mem_tc.n_refill++;
    return h + 1;
}

__attribute__((noinline)) static void *mem_alloc_large(size_t size)
{
    struct mem_hdr *h;

    if (size > SIZE_MAX - sizeof(*h)) {
        errno = ENOMEM;
        return NULL;
    }
    h = malloc(sizeof(*h) + size);
    if (h == NULL)
        return NULL;
    h->tag = MEM_TAG_LARGE;
    mem_tc.n_large++;
    return h + 1;
}

static inline void *mem_alloc(size_t size)
{
    struct mem_bin *b;
    struct mem_hdr *h;
    unsigned c;

    if (__builtin_expect(size > MEM_MAX_SMALL, 0))
        return mem_alloc_large(size);
    c = mem_class_of(size);
    b = &mem_tc.bin[c];
    h = b->head;
    if (__builtin_expect(h == NULL, 0))
        return mem_refill(c);
    b->head = h->next;
    b->n--;
    h->tag = MEM_TAG_LIVE + c;
    return h + 1;
}

static inline void mem_push(struct mem_bin *b, struct mem_hdr *h, unsigned c)
{
    h->tag = MEM_TAG_FREE + c;
    h->next = b->head;
    b->head = h;
    b->n++;
}

/* Anything but a live small block with room on its list. */
__attribute__((noinline)) static void mem_free_slow(struct mem_hdr *h)
{
    uint32_t c = h->tag - MEM_TAG_LIVE;

    if (h->tag == MEM_TAG_LARGE) {
        h->tag = 0;
        free(h);
        return;
    }
    if (c >= MEM_N_CLASSES)
        mem_bad(h);
    if (mem_tc.state == MEM_TC_NEW) {
        mem_tc_init();
        if (mem_tc.bin[c].n < mem_tc.bin[c].lim) {
            mem_push(&mem_tc.bin[c], h, c);
            return;
        }
    }
    /* at the cap (or the cache is off): give it back */
    h->tag = 0;
    mem_tc.n_release++;
    free(h);
}

static inline void mem_release(void *p)
{
    struct mem_hdr *h;
    struct mem_bin *b;
    uint32_t c;

    if (p == NULL)
        return;
    h = (struct mem_hdr *)p - 1;
    c = h->tag - MEM_TAG_LIVE;
    if (__builtin_expect(c >= MEM_N_CLASSES, 0)) {
        mem_free_slow(h);
        return;
    }
    b = &mem_tc.bin[c];
    if (__builtin_expect(b->n >= b->lim, 0)) {
        mem_free_slow(h);
        return;
    }
    mem_push(b, h, c);
}

void *mem_malloc(size_t size)
{
    return mem_alloc(size);
}

void mem_free(void *p)
{
    mem_release(p);
}

void *mem_calloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    p = mem_alloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *mem_realloc(void *p, size_t size)
{
    struct mem_hdr *h;
    uint32_t c;
    void *q;

    if (p == NULL)
        return mem_alloc(size);
    h = (struct mem_hdr *)p - 1;
    c = h->tag - MEM_TAG_LIVE;
    if (c < MEM_N_CLASSES) {
        if (size <= MEM_MAX_SMALL && mem_class_of(size) == c)
            return p;
        q = mem_alloc(size);
        if (q == NULL)
            return NULL;
        memcpy(q, p, size < mem_size[c] ? size : mem_size[c]);
        mem_release(p);
        return q;
    }
    if (h->tag != MEM_TAG_LARGE)
        mem_bad(h);
    if (size > MEM_MAX_SMALL) {
        if (size > SIZE_MAX - sizeof(*h)) {
            errno = ENOMEM;
            return NULL;
        }
        h = realloc(h, sizeof(*h) + size);
        return h != NULL ? h + 1 : NULL;
    }
    /* large to small: the old block holds more than <size> bytes */
    q = mem_alloc(size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, size);
    h->tag = 0;
    free(h);
    return q;
}

size_t mem_usable_size(const void *p)
{
    const struct mem_hdr *h;
    uint32_t c;

    if (p == NULL)
        return 0;
    h = (const struct mem_hdr *)p - 1;
    c = h->tag - MEM_TAG_LIVE;
    if (c < MEM_N_CLASSES)
        return mem_size[c];
    if (h->tag != MEM_TAG_LARGE)
        mem_bad(h);
    return malloc_usable_size((void *)(uintptr_t)h) - sizeof(*h);
}

size_t mem_class_cap(unsigned cls)
{
    size_t n;

    if (cls >= MEM_N_CLASSES)
        return 0;
    n = MEM_CACHE_BYTES / mem_size[cls];
    return n < MEM_CAP_MIN ? MEM_CAP_MIN : n > MEM_CAP_MAX ? MEM_CAP_MAX : n;
}

void mem_trim(void)
{
    for (unsigned c = 0; c < MEM_N_CLASSES; c++) {
        struct mem_bin *b = &mem_tc.bin[c];
        struct mem_hdr *h;

        while ((h = b->head) != NULL) {
            b->head = h->next;
            h->tag = 0;
            free(h);
        }
        b->n = 0;
    }
}

void mem_stats_get(struct mem_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned c = 0; c < MEM_N_CLASSES; c++) {
        out->n_cached[c] = mem_tc.bin[c].n;
        out->bytes_cached += (size_t)mem_tc.bin[c].n * (MEM_ALIGN + mem_size[c]);
    }
    out->n_refill = mem_tc.n_refill;
    out->n_release = mem_tc.n_release;
    out->n_large = mem_tc.n_large;
}

#else /* MEM_PASSTHROUGH: let the sanitizer's own malloc see everything */

void *mem_malloc(size_t size)
{
    return malloc(size != 0 ? size : 1);
}

void mem_free(void *p)
{
    free(p);
}

void *mem_calloc(size_t n, size_t size)
{
    return n != 0 && size != 0 ? calloc(n, size) : calloc(1, 1);
}

void *mem_realloc(void *p, size_t size)
{
    return realloc(p, size != 0 ? size : 1);
}

size_t mem_usable_size(const void *p)
{
    return p != NULL ? malloc_usable_size((void *)(uintptr_t)p) : 0;
}

size_t mem_class_cap(unsigned cls)
{
    return 0;
}

void mem_trim(void)
{
}

void mem_stats_get(struct mem_stats *out)
{
    memset(out, 0, sizeof(*out));
}

#endif /* MEM_PASSTHROUGH */

size_t mem_class_size(unsigned cls)
{
    return cls < MEM_N_CLASSES ? mem_size[cls] : 0;
}

void *mem_malloc_ud(size_t size, void *ud)
{
    return mem_malloc(size);
}

void mem_free_ud(void *p, void *ud)
{
    mem_free(p);
}

void *mem_calloc_ud(size_t n, size_t size, void *ud)
{
    return mem_calloc(n, size);
}

void *mem_realloc_ud(void *p, size_t size, void *ud)
{
    return mem_realloc(p, size);
}

/*
 * mem.h: a small per-thread size-class allocator for hot, short-lived blocks:
 * nghttp2's (streams, header rcbufs, outbound items, frame buffers, through
 * nghttp2_mem in h2_front.c) and libevent's (evbuffer chains, events, through
 * event_set_mem_functions() at the top of main()).
 *
 * glibc's tcache keeps 7 blocks per size; with 160 streams in flight on one
 * worker, these allocations overflow it and every request pays _int_malloc
 * and _int_free. This keeps up to a per-class cap of free blocks per thread in
 * plain LIFO lists, so the common malloc and free are a list pop and push.
 *
 * Layout and classes. Every block has a 16-byte header before it that records
 * its class (and a live/free magic), so free() and realloc() need no size and
 * every pointer handed out is 16-byte aligned (max_align_t). Requests of 0..256
 * bytes round up to a multiple of 16 (16 classes), 257..4096 to one of four
 * classes per doubling (320, 384, 448, 512, 640, ...: at most 25 % slack, where
 * powers of two would put the 302-byte block nghttp2 1.52 takes per request in
 * 512); larger ones go straight to malloc() behind the same header.
 *
 * Threads. The free lists are _Thread_local and take no lock. Each small block
 * is its own malloc() allocation (the cache refills one block at a time: after
 * warm-up the lists hold the working set and refills stop, so slabs would only
 * speed up warm-up), hence any thread may own it: a block freed on another
 * thread than the one that allocated it simply joins the freeing thread's list,
 * or goes back to free() when that list is at its cap. Blocks need no owner and
 * a thread's exit strands nothing.
 *
 * Bounds. Each thread keeps at most mem_class_cap(c) free blocks of class c
 * (256 KiB of a class, within 16..256 blocks: 256 up to 1024 bytes, 128 of
 * 2048, 64 of 4096; at most 3.9 MiB per thread if every list filled); beyond
 * the cap a freed block goes back to free(). 256 covers what one worker with
 * ~160 streams in flight frees and takes again (measured high-water marks: 161
 * blocks of 160 bytes and 160 of 320 from nghttp2, 192 of 144 and 208 1 KiB
 * evbuffer chains from libevent); past it the extra mallocs and frees cost what
 * glibc costs plus the miss. When a thread ends, a pthread key destructor frees
 * every block its lists hold; the main thread may call mem_trim() before it
 * exits.
 *
 * Sanitizers. Under AddressSanitizer, ThreadSanitizer, MemorySanitizer or
 * HWASan (gcc's __SANITIZE_*__ macros, clang's __has_feature), or when built with
 * -DMEM_PASSTHROUGH=1 (for valgrind's memcheck), every function passes straight
 * through to malloc/calloc/realloc/free so the tools see every bug.
 *
 * Misuse: freeing a pointer that is not from mem_*(), or a double free detected
 * by the header's magic, writes one line to stderr and aborts (as glibc does);
 * it never corrupts a list silently. Since libevent allocates here, memory it
 * hands over for the caller to release (evhttp_uridecode(), evbuffer_readln(),
 * evhttp_encode_uri()...) goes to mem_free(), never free(): release builds
 * abort on the mix-up, but sanitizer builds (free == mem_free) cannot see it.
 */
#ifndef CUTOVER_MEM_H
#define CUTOVER_MEM_H

#include <stddef.h>
#include <stdint.h>

#if defined(MEM_PASSTHROUGH)
/* forced by the build */
#elif defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||                             \
    defined(__SANITIZE_HWADDRESS__)
#define MEM_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define MEM_PASSTHROUGH 1
#endif
#endif
#ifndef MEM_PASSTHROUGH
#define MEM_PASSTHROUGH 0
#endif

/* 16 classes of 16-byte steps up to 256, then four per doubling (320, 384,
 * 448, 512, 640, ... 3584, 4096). */
#define MEM_N_CLASSES 32
/* Requests above this go straight to malloc() (with the header). */
#define MEM_MAX_SMALL 4096
/* Alignment of every pointer returned, and size of the per-block header. */
#define MEM_ALIGN 16

/*
 * malloc(), calloc(), realloc() and free() with the C semantics, except:
 * mem_malloc(0) and mem_realloc(p, 0) return a unique minimum-size block (never
 * NULL for want of size), and blocks must be given back to mem_free() or
 * mem_realloc() only (never free()). NULL means out of memory (errno ENOMEM);
 * mem_calloc() also returns NULL when <n> * <size> overflows. Any thread may
 * free or realloc a block, whichever thread allocated it.
 */
void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
void mem_free(void *p);

/*
 * The same four with the extra user-data argument of nghttp2_mem (nghttp2.h:
 * nghttp2_malloc, nghttp2_free, nghttp2_calloc, nghttp2_realloc), which they
 * ignore; this header does not include nghttp2. Use them as
 *   static nghttp2_mem m = {NULL, mem_malloc_ud, mem_free_ud, mem_calloc_ud, mem_realloc_ud};
 */
void *mem_malloc_ud(size_t size, void *ud);
void mem_free_ud(void *p, void *ud);
void *mem_calloc_ud(size_t n, size_t size, void *ud);
void *mem_realloc_ud(void *p, size_t size, void *ud);

/*
 * Bytes usable at <p> (a live block from mem_*()): the class size for small
 * blocks, at least the size asked for large ones (malloc_usable_size() when
 * passing through). <p> NULL gives 0.
 */
size_t mem_usable_size(const void *p);

/* Size of class <cls> and how many free blocks of it one thread keeps at most
 * (< MEM_N_CLASSES; 0 otherwise, and 0 caps when passing through). */
size_t mem_class_size(unsigned cls);
size_t mem_class_cap(unsigned cls);

/*
 * Frees every block the calling thread's lists hold; the lists stay usable.
 * Thread exit does this by itself; the main thread may call it before it exits.
 */
void mem_trim(void);

/* The calling thread's cache, for tests and debugging (all zero when passing
 * through). Refills and releases are the calls to malloc() and free() made for
 * small blocks: misses, and frees beyond a class's cap. */
struct mem_stats {
    size_t n_cached[MEM_N_CLASSES]; /* free blocks held now */
    size_t bytes_cached;            /* their class sizes, headers included */
    uint64_t n_refill;              /* small blocks taken from malloc() */
    uint64_t n_release;             /* small blocks given back to free() past a cap */
    uint64_t n_large;               /* allocations above MEM_MAX_SMALL */
};
void mem_stats_get(struct mem_stats *out);

#endif

/*
 * sock.c: buffered event-driven sockets, plain or TLS (see sock.h).
 *
 * Three events per sock, all embedded (no allocation):
 *   rev  EV_READ|EV_PERSIST on the fd, added while reading is wanted;
 *   wev  EV_WRITE|EV_PERSIST on the fd, added only while something waits for
 *        the socket to become writable (a full send buffer, a connect in
 *        progress, a TLS handshake or read that wants to write);
 *   fev  no fd: activated (event_active) by sock_kick() once bytes were added
 *        to the output, so the write happens later in the same loop
 *        iteration, after the current callback stack has returned, batched
 *        with whatever else that stack added. (An evbuffer callback on the
 *        output would do it without the explicit call, at ~25 instructions
 *        per evbuffer_add: the h2 front adds a frame at a time.)
 * Persistent events with a timeout are re-armed by libevent at every
 * activation, and event_add(NULL) does not clear a timeout: wev and rev are
 * re-assigned whenever their timeout changes, and fev is a separate event so
 * that activating it never re-adds the fd.
 */
#include "sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

#include "log.h"
#include "mem.h"

#define SOCK_MAGIC 0x534f434bu          /* "SOCK" */
#define SOCK_SCRATCH (64 * 1024)        /* per-thread read buffer for small reads */
#define SOCK_BIG_READ (16 * 1024)       /* a read this large switches to in-place reads */
#define SOCK_READ_CAP (256 * 1024)      /* bytes read per wake-up at most */
#define SOCK_WRITE_CAP (1024 * 1024)    /* bytes written per flush at most */
#define SOCK_TLS_RECORD 16384           /* plaintext per SSL_write: one full record */
#define SOCK_N_SSL_ERR 4

struct sock {
    unsigned magic;
    int fd;
    struct event_base *base;
    SSL *ssl;
    struct event rev, wev, fev;
    struct evbuffer *in, *out;
    struct evbuffer_cb_entry *in_cbe;
    sock_data_cb rd, wr;
    sock_event_cb ev;
    void *arg;
    size_t rd_hi, wr_lo;
    struct timeval rtv, wtv;
    size_t ssl_retry_len;       /* an SSL_write to repeat with this length */
    unsigned long ssl_err[SOCK_N_SSL_ERR];
    unsigned n_ssl_err, ssl_err_pos;
    unsigned in_handler;        /* depth of our own handlers on the stack */
    int connect_err;            /* a connect that failed at once, reported from fev */
    unsigned has_rtv : 1, has_wtv : 1;
    unsigned en_read : 1, en_write : 1;
    unsigned rev_added : 1, wev_added : 1;
    unsigned connecting : 1, handshaking : 1;
    unsigned wm_suspended : 1;  /* reading stopped at the high watermark */
    unsigned flush_pending : 1; /* fev is active */
    unsigned write_err : 1;
    unsigned ssl_fatal : 1;     /* no SSL_shutdown after this */
    unsigned rd_wants_w : 1;    /* SSL_read or the handshake wants the socket writable */
    unsigned wr_wants_r : 1;    /* SSL_write wants the socket readable */
    unsigned big : 1;           /* large transfer: read in place, no scratch copy */
    unsigned dead : 1;          /* sock_free ran; freed when the handlers unwind */
};

/* Static TLS, not malloc'd: nothing to free at thread exit. */
static _Thread_local unsigned char sock_scratch[SOCK_SCRATCH] __attribute__((aligned(64)));

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_flush(evutil_socket_t fd, short what, void *arg);
static void in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg);

/* ---- event bookkeeping ---- */

static void assign_rev(struct sock *s)
{
    event_assign(&s->rev, s->base, s->fd, EV_READ | EV_PERSIST, on_read, s);
}

static void assign_wev(struct sock *s)
{
    event_assign(&s->wev, s->base, s->fd, EV_WRITE | EV_PERSIST, on_write, s);
}

/* Whether the fd must be watched for reading now. */
static int want_rev(const struct sock *s)
{
    if (s->fd < 0 || s->dead || s->connecting)
        return 0;
    if (s->handshaking)
        return !s->rd_wants_w;
    return (s->en_read && !s->wm_suspended) || s->wr_wants_r;
}

static void sync_rev(struct sock *s)
{
    int want = want_rev(s);
    if (want && !s->rev_added) {
        /* the read timeout counts while the user reads (and during the handshake) */
        event_add(&s->rev, s->has_rtv ? &s->rtv : NULL);
        s->rev_added = 1;
    } else if (!want && s->rev_added) {
        event_del(&s->rev);
        s->rev_added = 0;
    }
}

static void wev_on(struct sock *s)
{
    if (!s->wev_added) {
        event_add(&s->wev, s->has_wtv ? &s->wtv : NULL);
        s->wev_added = 1;
    }
}

static void wev_off(struct sock *s)
{
    if (s->wev_added) {
        event_del(&s->wev);
        s->wev_added = 0;
    }
}

static void kick(struct sock *s)
{
    if (!s->flush_pending && !s->dead) {
        s->flush_pending = 1;
        event_active(&s->fev, EV_WRITE, 1);
    }
}

static void ssl_note_errors(struct sock *s)
{
    unsigned long e;
    while ((e = ERR_get_error()) != 0)
        if (s->n_ssl_err < SOCK_N_SSL_ERR)
            s->ssl_err[s->n_ssl_err++] = e;
}

static void destroy(struct sock *s)
{
    if (s->in_cbe != NULL)
        evbuffer_remove_cb_entry(s->in, s->in_cbe);
    evbuffer_free(s->in);
    evbuffer_free(s->out);
    if (s->ssl != NULL)
        SSL_free(s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    s->magic = 0;
    free(s);
}

/* Runs the user's event callback; returns -1 if the sock died meanwhile. */
static int report(struct sock *s, short what)
{
    if (s->ev != NULL)
        s->ev(s, what, s->arg);
    return s->dead ? -1 : 0;
}

/* ---- reading ---- */

/*
 * recv(2) and send(2) as bare system calls. glibc brackets each socket call
 * with the cancellation-point switch (two atomic read-modify-writes on the
 * thread's cancel state), 1.2 % of an h2 request by perf; no thread of ours is
 * ever cancelled. Sanitizer builds keep libc's calls, which they intercept.
 */
#if MEM_PASSTHROUGH
#define sys_recv(fd, buf, len) recv((fd), (buf), (len), 0)
#define sys_send(fd, buf, len, flags) send((fd), (buf), (len), (flags))
#else
#define sys_recv(fd, buf, len) ((ssize_t)syscall(SYS_recvfrom, (fd), (buf), (len), 0, NULL, NULL))
#define sys_send(fd, buf, len, flags)                                                              \
    ((ssize_t)syscall(SYS_sendto, (fd), (buf), (len), (flags), NULL, 0))
#endif

/* Reads once into the input. > 0 bytes, 0 at EOF, -1 with errno (EAGAIN
 * included). */
static ssize_t plain_read(struct sock *s, size_t max)
{
    ssize_t n;
    if (s->big) {
        struct evbuffer_iovec v[2];
        struct iovec iov[2];
        size_t want = max < SOCK_SCRATCH ? max : SOCK_SCRATCH;
        int nv = evbuffer_reserve_space(s->in, (ev_ssize_t)want, v, 2);
        if (nv <= 0) {
            errno = ENOMEM;
            return -1;
        }
        size_t room = want; /* reserve_space may offer more than asked: read <want> at most */
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len < room ? v[i].iov_len : room;
            room -= iov[i].iov_len;
        }
        n = readv(s->fd, iov, nv);
        if (n <= 0) {
            evbuffer_commit_space(s->in, v, 0);
            return n;
        }
        size_t left = (size_t)n;
        int used = 0;
        for (int i = 0; i < nv && left > 0; i++, used++) {
            if (v[i].iov_len > left)
                v[i].iov_len = left;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(s->in, v, used);
        if ((size_t)n < SOCK_BIG_READ / 4)
            s->big = 0;
        return n;
    }
    n = sys_recv(s->fd, sock_scratch, max < SOCK_SCRATCH ? max : SOCK_SCRATCH);
    if (n <= 0)
        return n;
    if (evbuffer_add(s->in, sock_scratch, (size_t)n) != 0) {
        errno = ENOMEM;
        return -1;
    }
    if ((size_t)n >= SOCK_BIG_READ)
        s->big = 1;
    return n;
}

static ssize_t tls_read(struct sock *s, size_t max)
{
    struct evbuffer_iovec v;
    unsigned char *p;
    size_t want = max < SOCK_TLS_RECORD ? max : SOCK_TLS_RECORD;
    if (s->big) {
        if (evbuffer_reserve_space(s->in, (ev_ssize_t)want, &v, 1) != 1) {
            errno = ENOMEM;
            return -1;
        }
        p = v.iov_base;
        if (v.iov_len < want)
            want = v.iov_len;
    } else {
        p = sock_scratch;
    }
    ERR_clear_error();
    int r = SSL_read(s->ssl, p, (int)want);
    if (r > 0) {
        if (s->big) {
            v.iov_len = (size_t)r;
            evbuffer_commit_space(s->in, &v, 1);
            if (r < 1024)
                s->big = 0;
        } else {
            if (evbuffer_add(s->in, p, (size_t)r) != 0) {
                errno = ENOMEM;
                return -1;
            }
            if (r >= SOCK_TLS_RECORD / 2)
                s->big = 1;
        }
        return r;
    }
    if (s->big)
        evbuffer_commit_space(s->in, &v, 0);
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        s->rd_wants_w = 1;
        wev_on(s);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ssl_note_errors(s);
        s->ssl_fatal = 1;
        if (errno == 0 || errno == EAGAIN)
            return 0; /* EOF without close_notify: a dirty shutdown, taken as EOF */
        return -1;
    default:
        ssl_note_errors(s);
        s->ssl_fatal = 1;
        errno = EPROTO;
        return -1;
    }
}

static void resume_reading(struct sock *s)
{
    if (s->in_cbe != NULL) {
        evbuffer_remove_cb_entry(s->in, s->in_cbe);
        s->in_cbe = NULL;
    }
    s->wm_suspended = 0;
    sync_rev(s);
    /* data may wait inside OpenSSL, where epoll cannot see it */
    if (s->rev_added && s->ssl != NULL)
        event_active(&s->rev, EV_READ, 1);
}

static void in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    struct sock *s = arg;
    (void)info;
    if (s->wm_suspended && (s->rd_hi == 0 || evbuffer_get_length(b) < s->rd_hi))
        resume_reading(s);
}

static void suspend_reading(struct sock *s)
{
    s->wm_suspended = 1;
    sync_rev(s);
    if (s->in_cbe == NULL)
        s->in_cbe = evbuffer_add_cb(s->in, in_cb, s);
}

static void do_handshake(struct sock *s);
static void flush(struct sock *s);

/* Reads what the socket has (up to the cap and the watermark), hands it to
 * the read callback, then reports EOF or an error. */
static void read_some(struct sock *s)
{
    size_t got = 0;
    int eof = 0, err = 0;

    while (got < SOCK_READ_CAP) {
        size_t have = evbuffer_get_length(s->in), room = SOCK_READ_CAP - got;
        if (s->rd_hi != 0) {
            if (have >= s->rd_hi) {
                suspend_reading(s);
                break;
            }
            if (s->rd_hi - have < room)
                room = s->rd_hi - have;
        }
        size_t ask = s->ssl != NULL ? (room < SOCK_TLS_RECORD ? room : SOCK_TLS_RECORD)
                                    : (room < SOCK_SCRATCH ? room : SOCK_SCRATCH);
        ssize_t n = s->ssl != NULL ? tls_read(s, ask) : plain_read(s, ask);
        if (n > 0) {
            got += (size_t)n;
            /* plain: a short read emptied the socket. TLS: stop once
             * OpenSSL holds nothing more; what the socket may still have
             * wakes the (level-triggered) read event again, which costs
             * less than a read(2) that says EAGAIN after every burst */
            if (s->ssl == NULL ? (size_t)n < ask : !SSL_has_pending(s->ssl))
                break;
            continue;
        }
        if (n == 0)
            eof = 1;
        else if (errno != EAGAIN && errno != EINTR)
            err = 1;
        break;
    }
    if (got >= SOCK_READ_CAP && s->ssl != NULL && SSL_has_pending(s->ssl))
        event_active(&s->rev, EV_READ, 1); /* more inside OpenSSL: next round */
    if (got > 0 && s->rd != NULL) {
        s->rd(s, s->arg);
        if (s->dead)
            return;
    }
    if (eof || err) {
        s->en_read = 0;
        sync_rev(s);
        (void)report(s, (short)(BEV_EVENT_READING | (eof ? BEV_EVENT_EOF : BEV_EVENT_ERROR)));
    }
}

static void on_read_(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    (void)fd;
    CUT_BUG_ON(s->magic != SOCK_MAGIC);
    s->in_handler++;
    if (what & EV_TIMEOUT) {
        if (s->handshaking || s->en_read) {
            if (s->handshaking) {
                /* a handshake that timed out is over: no close_notify either */
                s->handshaking = 0;
                s->ssl_fatal = 1;
                wev_off(s);
            }
            s->en_read = 0;
            sync_rev(s);
            (void)report(s, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
        }
        goto out;
    }
    if (s->handshaking) {
        do_handshake(s);
        goto out;
    }
    if (s->wr_wants_r) {
        s->wr_wants_r = 0;
        sync_rev(s);
        flush(s);
        if (s->dead)
            goto out;
    }
    if (s->en_read && !s->wm_suspended)
        read_some(s);
out:
    if (--s->in_handler == 0 && s->dead)
        destroy(s);
}

/* ---- writing ---- */

static ssize_t tls_write(struct sock *s)
{
    size_t len = evbuffer_get_length(s->out);
    size_t n = s->ssl_retry_len ? s->ssl_retry_len : len < SOCK_TLS_RECORD ? len : SOCK_TLS_RECORD;
    unsigned char *p = evbuffer_pullup(s->out, (ev_ssize_t)n);
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ERR_clear_error();
    int r = SSL_write(s->ssl, p, (int)n);
    if (r > 0) {
        s->ssl_retry_len = 0;
        evbuffer_drain(s->out, (size_t)r);
        return r;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        s->ssl_retry_len = n;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_READ:
        s->ssl_retry_len = n;
        s->wr_wants_r = 1;
        sync_rev(s);
        errno = EINPROGRESS; /* blocked, but not on writability */
        return -1;
    default:
        ssl_note_errors(s);
        s->ssl_fatal = 1;
        errno = EPIPE;
        return -1;
    }
}

/* Writes the output until it is empty, the socket is full, or the cap. */
static void flush(struct sock *s)
{
    size_t done = 0;
    int blocked = 0;

    if (!s->en_write || s->connecting || s->handshaking || s->write_err || s->fd < 0 ||
        s->wr_wants_r)
        return;
    while (done < SOCK_WRITE_CAP && evbuffer_get_length(s->out) > 0) {
        ssize_t n = s->ssl != NULL ? tls_write(s)
                                   : evbuffer_write_atmost(s->out, s->fd, SOCK_WRITE_CAP - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINPROGRESS)
            break; /* TLS wants to read first: on_read retries */
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            blocked = 1;
            break;
        }
        s->write_err = 1;
        wev_off(s);
        (void)report(s, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
        return;
    }
    if (evbuffer_get_length(s->out) == 0) {
        if (!s->rd_wants_w)
            wev_off(s);
    } else if (blocked) {
        wev_on(s);
    } else if (done >= SOCK_WRITE_CAP) {
        kick(s); /* let other connections have a turn */
    }
    if (done > 0 && s->wr != NULL && evbuffer_get_length(s->out) <= s->wr_lo)
        s->wr(s, s->arg);
}

static void on_flush_(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    (void)fd;
    (void)what;
    CUT_BUG_ON(s->magic != SOCK_MAGIC);
    s->flush_pending = 0;
    s->in_handler++;
    if (s->connect_err != 0) {
        errno = s->connect_err;
        s->connect_err = 0;
        s->connecting = 0;
        (void)report(s, BEV_EVENT_ERROR);
    } else {
        flush(s);
    }
    if (--s->in_handler == 0 && s->dead)
        destroy(s);
}

static void connect_done(struct sock *s)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY)
        return; /* not yet */
    s->connecting = 0;
    wev_off(s);
    if (err != 0) {
        errno = err;
        (void)report(s, BEV_EVENT_ERROR);
        return;
    }
    sync_rev(s);
    if (report(s, BEV_EVENT_CONNECTED) < 0)
        return;
    flush(s);
}

static void do_handshake(struct sock *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->handshaking = 0;
        s->rd_wants_w = 0;
        wev_off(s);
        sync_rev(s);
        if (report(s, BEV_EVENT_CONNECTED) < 0)
            return;
        /* the client's first records may already sit inside OpenSSL */
        if (s->rev_added)
            event_active(&s->rev, EV_READ, 1);
        if (evbuffer_get_length(s->out) > 0)
            kick(s);
        return;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->rd_wants_w = 0;
        wev_off(s);
        sync_rev(s);
        return;
    case SSL_ERROR_WANT_WRITE:
        s->rd_wants_w = 1;
        sync_rev(s);
        wev_on(s);
        return;
    default:
        ssl_note_errors(s);
        s->ssl_fatal = 1;
        s->handshaking = 0;
        s->en_read = 0;
        sync_rev(s);
        wev_off(s);
        (void)report(s, BEV_EVENT_ERROR);
        return;
    }
}

static void on_write_(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    (void)fd;
    CUT_BUG_ON(s->magic != SOCK_MAGIC);
    s->in_handler++;
    if (what & EV_TIMEOUT) {
        wev_off(s);
        if (s->connecting) {
            /* only the user's own timers watch a connect; keep waiting */
            wev_on(s);
        } else if (s->handshaking) {
            s->handshaking = 0;
            s->ssl_fatal = 1;
            sync_rev(s);
            (void)report(s, BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING);
        } else {
            s->en_write = 0;
            (void)report(s, BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING);
        }
        goto out;
    }
    if (s->connecting) {
        connect_done(s);
        goto out;
    }
    if (s->handshaking) {
        do_handshake(s);
        goto out;
    }
    if (s->rd_wants_w) {
        s->rd_wants_w = 0;
        if (evbuffer_get_length(s->out) == 0)
            wev_off(s);
        if (s->en_read && !s->wm_suspended) {
            read_some(s);
            if (s->dead)
                goto out;
        }
    }
    flush(s);
out:
    if (--s->in_handler == 0 && s->dead)
        destroy(s);
}

size_t sock_write_direct(struct sock *s, const void *data, size_t len)
{
    if (s->ssl != NULL || s->fd < 0 || s->dead || s->connecting || s->write_err ||
        !s->en_write || s->wev_added || len == 0 || evbuffer_get_length(s->out) > 0)
        return 0;
    ssize_t n = sys_send(s->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n > 0 ? (size_t)n : 0;
}

void sock_flush_direct(struct sock *s)
{
    if (s->ssl == NULL && s->fd >= 0 && !s->dead && !s->connecting && !s->write_err &&
        s->en_write && !s->wev_added && evbuffer_get_length(s->out) > 0) {
        (void)evbuffer_write_atmost(s->out, s->fd, SOCK_WRITE_CAP); /* errors: found by flush */
        if (s->flush_pending && evbuffer_get_length(s->out) == 0 && s->connect_err == 0) {
            event_del(&s->fev); /* an earlier kick: nothing left for it */
            s->flush_pending = 0;
        }
    }
    sock_kick(s);
}

void sock_kick(struct sock *s)
{
    /* when wev is added the socket is full: its handler writes */
    if (!s->wev_added && evbuffer_get_length(s->out) > 0)
        kick(s);
}

/* Every socket callback is one clock batch: the exchanges it drives stamp
 * their times with one clock read (cut_now_cached_us) */
static void on_read(evutil_socket_t fd, short what, void *arg)
{
    uint64_t c = cut_clock_enter();
    on_read_(fd, what, arg);
    cut_clock_leave(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    uint64_t c = cut_clock_enter();
    on_write_(fd, what, arg);
    cut_clock_leave(c);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    uint64_t c = cut_clock_enter();
    on_flush_(fd, what, arg);
    cut_clock_leave(c);
}

/* ---- the interface ---- */

struct sock *sock_new(struct event_base *base, int fd, SSL *ssl)
{
    struct sock *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->magic = SOCK_MAGIC;
    s->base = base;
    s->fd = fd;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    if (s->in == NULL || s->out == NULL)
        goto fail;
    assign_rev(s);
    assign_wev(s);
    event_assign(&s->fev, base, -1, 0, on_flush, s);
    s->en_write = 1;
    if (ssl != NULL) {
        s->ssl = ssl;
        s->handshaking = 1;
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_set_read_ahead(ssl, 1);
        if (SSL_set_fd(ssl, fd) != 1)
            goto fail;
        SSL_set_accept_state(ssl);
    }
    return s;
fail:
    if (s->in != NULL)
        evbuffer_free(s->in);
    if (s->out != NULL)
        evbuffer_free(s->out);
    free(s);
    return NULL;
}

int sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t len)
{
    if (s->fd >= 0 || s->ssl != NULL) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    s->fd = fd;
    assign_rev(s);
    assign_wev(s);
    s->connecting = 1;
    if (connect(fd, sa, len) == 0) {
        wev_on(s); /* connected already: report it from the loop */
        return 0;
    }
    if (errno == EINPROGRESS || errno == EINTR) {
        wev_on(s);
        return 0;
    }
    if (errno == ECONNREFUSED) {
        s->connect_err = errno; /* as libevent: reported from the loop, not here */
        kick(s);
        return 0;
    }
    return -1;
}

void sock_setcb(struct sock *s, sock_data_cb rd, sock_data_cb wr, sock_event_cb ev, void *arg)
{
    s->rd = rd;
    s->wr = wr;
    s->ev = ev;
    s->arg = arg;
}

int sock_enable(struct sock *s, short what)
{
    if (s->dead)
        return -1;
    if (what & EV_READ) {
        int was = s->en_read;
        s->en_read = 1;
        if (!s->wm_suspended && s->rd_hi != 0 && evbuffer_get_length(s->in) >= s->rd_hi)
            suspend_reading(s);
        sync_rev(s);
        if (!was && s->rev_added && s->ssl != NULL && !s->handshaking &&
            SSL_has_pending(s->ssl))
            event_active(&s->rev, EV_READ, 1);
    }
    if (what & EV_WRITE) {
        s->en_write = 1;
        if (evbuffer_get_length(s->out) > 0 && !s->wev_added)
            kick(s);
    }
    return 0;
}

int sock_disable(struct sock *s, short what)
{
    if (what & EV_READ) {
        s->en_read = 0;
        sync_rev(s);
    }
    if (what & EV_WRITE) {
        s->en_write = 0;
        if (!s->connecting && !s->handshaking && !s->rd_wants_w)
            wev_off(s);
    }
    return 0;
}

void sock_setwatermark(struct sock *s, short what, size_t lo, size_t hi)
{
    if (what & EV_WRITE)
        s->wr_lo = lo;
    if (what & EV_READ) {
        s->rd_hi = hi;
        if (s->wm_suspended && (hi == 0 || evbuffer_get_length(s->in) < hi))
            resume_reading(s);
    }
}

void sock_set_timeouts(struct sock *s, const struct timeval *rd, const struct timeval *wr)
{
    int r_added = s->rev_added, w_added = s->wev_added;
    if (r_added)
        event_del(&s->rev);
    if (w_added)
        event_del(&s->wev);
    s->rev_added = s->wev_added = 0;
    s->has_rtv = rd != NULL && (rd->tv_sec != 0 || rd->tv_usec != 0);
    s->has_wtv = wr != NULL && (wr->tv_sec != 0 || wr->tv_usec != 0);
    if (s->has_rtv)
        s->rtv = *rd;
    if (s->has_wtv)
        s->wtv = *wr;
    if (s->fd >= 0) {
        assign_rev(s);
        assign_wev(s);
    }
    if (r_added)
        sync_rev(s);
    if (w_added)
        wev_on(s);
}

struct evbuffer *sock_input(struct sock *s)
{
    return s->in;
}

struct evbuffer *sock_output(struct sock *s)
{
    return s->out;
}

struct event_base *sock_base(struct sock *s)
{
    return s->base;
}

int sock_fd(const struct sock *s)
{
    return s->fd;
}

SSL *sock_ssl(const struct sock *s)
{
    return s->ssl;
}

unsigned long sock_ssl_error(struct sock *s)
{
    if (s->ssl_err_pos >= s->n_ssl_err)
        return 0;
    return s->ssl_err[s->ssl_err_pos++];
}

void sock_free(struct sock *s)
{
    if (s == NULL || s->dead)
        return;
    CUT_BUG_ON(s->magic != SOCK_MAGIC);
    s->dead = 1;
    if (s->rev_added)
        event_del(&s->rev);
    if (s->wev_added)
        event_del(&s->wev);
    event_del(&s->fev);
    s->rev_added = s->wev_added = 0;
    if (s->ssl != NULL && !s->ssl_fatal && !s->handshaking) {
        /* best effort close_notify; never wait for the peer's */
        ERR_clear_error();
        (void)SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (s->in_handler == 0)
        destroy(s);
}

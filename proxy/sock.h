/*
 * sock.h: a buffered, event-driven socket (plain TCP or TLS) for the hot path,
 * in place of libevent's bufferevents.
 *
 * The interface follows the subset of bufferevent that cutover used
 * (callbacks, enable/disable, watermarks, write timeout, BEV_EVENT_* flags),
 * so the protocol code reads the same; what differs is underneath:
 *
 *   - Writes go out from the same loop iteration: sock_kick() after adding
 *     to the output activates the write handler, which writes at once (writev, or SSL_write
 *     in records of up to 16 KiB) and asks epoll for EPOLLOUT only when the
 *     socket is full. A bufferevent added and removed its write event around
 *     every write: two epoll_ctl per response on each side.
 *   - Reads need no ioctl(FIONREAD): small reads land in a per-thread scratch
 *     buffer and are appended (a 1 KiB chain for a small message), large
 *     transfers are read straight into the input (reserve/commit), and a
 *     wake-up reads as long as the socket fills the space it is given, up to
 *     a cap. TLS reads use read-ahead: one read(2) per burst of records.
 *   - TLS is OpenSSL on the socket itself (SSL_set_fd), no BIO pair, no
 *     extra copies; the handshake is driven here and reported as
 *     BEV_EVENT_CONNECTED.
 *
 * Callbacks run from the sock's own event handlers, never from sock_* calls
 * made by the user. sock_free() may be called from inside any callback.
 * One thread only (a worker's base).
 */
#ifndef CUTOVER_SOCK_H
#define CUTOVER_SOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/bufferevent.h> /* BEV_EVENT_* flags */
#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct sock;

typedef void (*sock_data_cb)(struct sock *s, void *arg);
typedef void (*sock_event_cb)(struct sock *s, short what, void *arg);

/*
 * A sock on accepted socket <fd> (non-blocking; closed by sock_free), or on
 * no socket yet (fd -1: sock_connect makes one). With <ssl>, the sock owns it
 * and runs the server side of the handshake once reading is enabled; the
 * event callback gets BEV_EVENT_CONNECTED when it is done. NULL on ENOMEM
 * (then <fd> and <ssl> are still the caller's).
 */
struct sock *sock_new(struct event_base *base, int fd, SSL *ssl);

/* Starts a non-blocking connect (fd -1 socks). BEV_EVENT_CONNECTED or
 * BEV_EVENT_ERROR follows from the event loop; -1 with errno set on an
 * immediate local failure (no socket, no port). */
int sock_connect(struct sock *s, const struct sockaddr *sa, socklen_t len);

void sock_setcb(struct sock *s, sock_data_cb rd, sock_data_cb wr, sock_event_cb ev, void *arg);

/*
 * Call after adding bytes to the output (sock_output()): they are written
 * later in this loop iteration, once the current callback stack has unwound,
 * together with whatever else it adds. Without it they wait for the next
 * kick or write event. Cheap when there is nothing to do.
 */
void sock_kick(struct sock *s);

/*
 * Writes <data> at once when the sock can take it without queueing: plain
 * TCP, connected, output empty, socket not known to be full. Returns the
 * bytes written (0 when it could not, the socket was full, or on an error,
 * which the event loop then finds when the caller queues the rest with
 * sock_output() + sock_kick(), as it must). No callback runs.
 */
size_t sock_write_direct(struct sock *s, const void *data, size_t len);

/*
 * sock_kick(), but writes what it can at once (plain TCP only; TLS and a
 * socket known to be full just kick). No callback runs from here: the write
 * callback is not called for bytes written this way.
 */
void sock_flush_direct(struct sock *s);

/* EV_READ and/or EV_WRITE. A new sock has EV_WRITE enabled, EV_READ not. */
int sock_enable(struct sock *s, short what);
int sock_disable(struct sock *s, short what);

/*
 * EV_READ: reading stops while the input holds <hi> bytes or more (0: no
 * limit) and resumes once it is drained below. EV_WRITE: the write callback
 * runs after a write that leaves <lo> bytes or fewer in the output.
 */
void sock_setwatermark(struct sock *s, short what, size_t lo, size_t hi);

/*
 * Read timeout: no byte read for <rd> while reading is enabled. Write
 * timeout: output pending and no byte written for <wr>. Either may be NULL.
 * The event callback gets BEV_EVENT_TIMEOUT | BEV_EVENT_READING/WRITING and
 * that direction is disabled.
 */
void sock_set_timeouts(struct sock *s, const struct timeval *rd, const struct timeval *wr);

struct evbuffer *sock_input(struct sock *s);
struct evbuffer *sock_output(struct sock *s);
struct event_base *sock_base(struct sock *s);
int sock_fd(const struct sock *s);
SSL *sock_ssl(const struct sock *s);

/* The OpenSSL errors recorded when this sock's TLS failed, oldest first; 0
 * when there are no more. */
unsigned long sock_ssl_error(struct sock *s);

/* Stops everything and closes the socket (a TLS close_notify is attempted,
 * without waiting). Unwritten output is discarded. Safe inside callbacks. */
void sock_free(struct sock *s);

#endif

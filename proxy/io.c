#include "io.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#define IO_LIBEVENT_MAX_READ 4096 /* EVBUFFER_MAX_READ in libevent 2.1 */
#define IO_STEP (64 * 1024)

static void read_into(struct evbuffer *in, int fd, size_t have, size_t max);

void io_read_more(struct bufferevent *bev, size_t max)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t have = evbuffer_get_length(in);
    if (have < IO_LIBEVENT_MAX_READ)
        return;
    int fd = bufferevent_getfd(bev);
    if (fd == -1)
        return;
    /* a socket bufferevent keeps the end of its input frozen except while it
     * reads itself; we read on its behalf, then freeze it again */
    evbuffer_unfreeze(in, 0);
    read_into(in, fd, have, max);
    evbuffer_freeze(in, 0);
}

static void read_into(struct evbuffer *in, int fd, size_t have, size_t max)
{
    while (have < max) {
        struct evbuffer_iovec v[2];
        size_t want = max - have < IO_STEP ? max - have : IO_STEP;
        int n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
        if (n <= 0)
            return;
        struct iovec iov[2];
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        ssize_t r = readv(fd, iov, n);
        if (r <= 0) {
            /* EAGAIN: drained; EOF or an error: libevent's next read reports it */
            evbuffer_commit_space(in, v, 0);
            return;
        }
        size_t left = (size_t)r;
        int used = 0;
        for (int i = 0; i < n && left > 0; i++, used++) {
            if (v[i].iov_len > left)
                v[i].iov_len = left;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(in, v, used);
        have += (size_t)r;
        if ((size_t)r < want)
            return; /* the socket is empty now */
    }
}

/*
 * io.h: larger reads than libevent 2.1 makes by itself.
 *
 * evbuffer_read() in libevent 2.1 reads at most 4096 bytes per call
 * (EVBUFFER_MAX_READ), whatever bufferevent_set_max_single_read() says: a
 * 64 KiB response then costs 16 read(2) calls, 16 trips through the event
 * loop and as many small writes downstream. From a read callback,
 * io_read_more() reads what the socket still holds straight into the
 * bufferevent's input buffer (reserve/commit, no copy), up to <max> bytes.
 */
#ifndef CUTOVER_IO_H
#define CUTOVER_IO_H

#include <stddef.h>

struct bufferevent;

/*
 * Plain socket bufferevents only (never a TLS one). Called after libevent's
 * own read: does nothing unless that read may have been capped (the input
 * holds at least 4096 bytes), so small messages cost no extra syscall. EOF
 * and errors are left for libevent's next read to report.
 */
void io_read_more(struct bufferevent *bev, size_t max);

#endif

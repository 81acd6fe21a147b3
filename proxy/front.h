/*
 * front.h: the downstream (client-facing) protocol front ends. The listener
 * accepts a connection, sets up TLS if configured, decides the protocol
 * (ALPN on TLS; the HTTP/2 connection preface on plain listeners) and hands
 * the sock to one of these.
 */
#ifndef CUTOVER_FRONT_H
#define CUTOVER_FRONT_H

#include <sys/socket.h>

struct sock;
struct worker;

/*
 * Starts serving HTTP/1.x on <s>, which is set up (callbacks are replaced)
 * and may already hold received bytes in its input buffer. Takes ownership of
 * <s>: on failure it is freed. <tls> is 1 on TLS listeners (for
 * X-Forwarded-Proto). <peer> is the client address (copied).
 * Returns 0 or -1.
 */
int h1f_start(struct worker *w, struct sock *s, int tls, const struct sockaddr *peer,
              socklen_t peerlen);

/* Same for HTTP/2 (h2 by ALPN, or h2c by prior knowledge). */
int h2f_start(struct worker *w, struct sock *s, int tls, const struct sockaddr *peer,
              socklen_t peerlen);

#endif

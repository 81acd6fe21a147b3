/*
 * tls.h: server TLS contexts (OpenSSL 3): TLS 1.2 minimum, ALPN "h2" then
 * "http/1.1".
 */
#ifndef CUTOVER_TLS_H
#define CUTOVER_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Returns a new context for <cert>/<key> or NULL with a message in <err>
 * (the OpenSSL error queue is drained into it). */
SSL_CTX *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);

/* 1 when ALPN chose "h2" on <ssl>. */
int tls_is_h2(const SSL *ssl);

#endif

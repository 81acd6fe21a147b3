#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static const unsigned char alpn_h2[] = "h2";
static const unsigned char alpn_h1[] = "http/1.1";

/* Server preference: h2 if the client offers it, else http/1.1. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *h1 = NULL;
    for (unsigned i = 0; i < inlen;) {
        unsigned len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == 2 && memcmp(in + i + 1, alpn_h2, 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        if (len == 8 && memcmp(in + i + 1, alpn_h1, 8) == 0)
            h1 = in + i + 1;
        i += 1 + len;
    }
    if (h1 != NULL) {
        *out = h1;
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void drain_errors(char *err, size_t errlen, const char *what)
{
    unsigned long e;
    char buf[256];
    size_t n = (size_t)snprintf(err, errlen, "%s", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        if (n < errlen)
            n += (size_t)snprintf(err + n, errlen - n, ": %s", buf);
    }
}

SSL_CTX *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        drain_errors(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* no SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the record
     * buffers around every read and write, a malloc pair per record */
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        drain_errors(err, errlen, cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        drain_errors(err, errlen, key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        drain_errors(err, errlen, "certificate and key do not match");
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_is_h2(const SSL *ssl)
{
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && memcmp(p, alpn_h2, 2) == 0;
}

/*
 * floor.c: the upstream half of a proxied request, alone, as a floor for the
 * CPU a proxy with HTTP/1.1 upstreams must spend per request.
 *
 *   floor PORT_A PORT_B PATH CONNS REQUESTS
 *
 * Opens CONNS keep-alive connections to 127.0.0.1 (nine in ten to PORT_A, the
 * rest to PORT_B, the bench's 90/10 split), keeps one request in flight on
 * each, as a proxy does for CONNS concurrent streams, and does nothing else:
 * one send(2) of a fixed request head, recv(2) until the response (found by
 * its Content-Length) is complete, level-triggered epoll. No parsing beyond
 * that, no routing, no HTTP/2 side. Prints the user and system CPU time per
 * request from getrusage(2) over REQUESTS requests after a warm-up. Run by
 * `bench/prof.py --floor`, pinned like the proxies.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t got, need; /* bytes of this response so far; its full size, 0 until known */
    char head[4096];  /* the start of the response, until the head is complete */
};

static char req[512];
static size_t req_len;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        die("socket");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

/* Sizes the response from its head once the head is complete. */
static void size_response(struct conn *c)
{
    size_t n = c->got < sizeof(c->head) - 1 ? c->got : sizeof(c->head) - 1;
    c->head[n] = '\0';
    char *end = strstr(c->head, "\r\n\r\n");
    if (end == NULL)
        return;
    char *cl = strcasestr(c->head, "\r\ncontent-length:");
    if (cl == NULL || cl > end) {
        fprintf(stderr, "floor: response without Content-Length\n");
        exit(1);
    }
    c->need = (size_t)(end + 4 - c->head) + strtoul(cl + 17, NULL, 10);
}

static double cpu_us(int sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval t = sys ? ru.ru_stime : ru.ru_utime;
    return (double)t.tv_sec * 1e6 + (double)t.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: floor PORT_A PORT_B PATH CONNS REQUESTS\n");
        return 2;
    }
    int pa = atoi(argv[1]), pb = atoi(argv[2]), nconn = atoi(argv[4]);
    long total = atol(argv[5]), warm = (long)nconn * 20, done = 0, sent = 0;
    double u0 = 0, s0 = 0;
    if (nconn <= 0 || total <= 0)
        return 2;
    req_len = (size_t)snprintf(req, sizeof(req),
                               "GET %s HTTP/1.1\r\nHost: origin\r\nX-Forwarded-For: 127.0.0.1\r\n"
                               "X-Forwarded-Proto: http\r\n\r\n",
                               argv[3]);
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconn, sizeof(*cs));
    if (ep < 0 || cs == NULL)
        die("setup");
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = dial(i % 10 < 9 ? pa : pb);
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
            die("epoll_ctl");
    }
    struct epoll_event evs[256];
    while (done < warm + total) {
        int n = epoll_wait(ep, evs, 256, 5000);
        if (n <= 0)
            die("epoll_wait (no progress in 5 s)");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) { /* connected: first request, then reads only */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (send(c->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len)
                    die("send");
                sent++;
                continue;
            }
            char buf[65536];
            char *dst = c->got < sizeof(c->head) ? c->head + c->got : buf;
            size_t room = c->got < sizeof(c->head) ? sizeof(c->head) - c->got : sizeof(buf);
            ssize_t r = recv(c->fd, dst, room, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("recv (origin closed)");
            }
            c->got += (size_t)r;
            if (c->need == 0)
                size_response(c);
            if (c->need == 0 || c->got < c->need)
                continue;
            if (c->got > c->need) {
                fprintf(stderr, "floor: more bytes than the response\n");
                return 1;
            }
            c->got = c->need = 0;
            if (++done == warm) {
                u0 = cpu_us(0);
                s0 = cpu_us(1);
            }
            if (sent < warm + total) {
                if (send(c->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len)
                    die("send");
                sent++;
            }
        }
    }
    double u = cpu_us(0) - u0, s = cpu_us(1) - s0;
    printf("floor %s: %ld requests on %d connections: %.2f us/request (user %.2f, sys %.2f)\n",
           argv[3], total, nconn, (u + s) / (double)total, u / (double)total, s / (double)total);
    for (int i = 0; i < nconn; i++)
        close(cs[i].fd);
    free(cs);
    close(ep);
    return 0;
}

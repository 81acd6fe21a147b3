/*
 * ctl.h: `cutover ctl`, the operator's command-line client of the admin
 * endpoint (admin.h), in the same binary.
 *
 *   cutover ctl [-c CONF] [-a ADDR] [-k TOKENFILE] [-T SECONDS] COMMAND
 *     status                      GET /status, prints the JSON
 *     metrics                     GET /metrics, prints the text
 *     healthz                     GET /healthz
 *     weights ROUTE TRACK=N ...   PUT /routes/ROUTE/weights {"TRACK":N,...}
 *     arm ROUTE                   POST /routes/ROUTE/guard/arm
 *
 * The address is -a, else the admin block of -c CONF, else 127.0.0.1:9901;
 * the token is read from -k, else from the admin block's token_file, else
 * $CUTOVER_ADMIN_TOKEN. A blocking socket client with a deadline: the
 * process never waits longer than -T seconds (default 10) in all.
 *
 * Exit status: 0 for a 2xx answer, 1 for any other HTTP status (the body is
 * printed on stderr), 2 for a usage, config or connection error.
 */
#ifndef CUTOVER_CTL_H
#define CUTOVER_CTL_H

/* Runs `cutover ctl ...`: <argv>[0] is "ctl". Returns the exit status. */
int ctl_main(int argc, char **argv);

#endif

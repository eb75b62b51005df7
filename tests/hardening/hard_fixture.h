/* What the hardening tests share: a scratch directory of their own (made at
 * the start, removed at the end when every check passed), files written
 * into it, the last error's text, and a child process that reports how far
 * its memory peak rose. */
#ifndef NU_HARD_FIXTURE_H
#define NU_HARD_FIXTURE_H

#include <stddef.h>

#include "nextuser/nextuser.h"

/* Makes /tmp/PREFIX_XXXXXX; exits with 2 when it cannot. */
const char *nu_hard_dir_make(const char *prefix);
/* The directory made. */
const char *nu_hard_dir(void);
/* DIR/name (four rotating buffers: up to four at once). */
const char *nu_hard_in(const char *name);
/* Writes DIR/name; exits with 2 on failure. */
void nu_hard_put_bytes(const char *name, const void *data, size_t len);
void nu_hard_put(const char *name, const char *text);
/* 1 when the library's last error contains needle. */
int nu_hard_says(const char *needle);
/* Runs load(arg) in a child process: 1 when refused(status, arg) holds and
 * its memory peak rose by less than limit_kb during the call; *grew_kb gets
 * the rise (-1 unknown).  The child prints a failure's message. */
int nu_hard_refused_within(nu_status (*load)(void *arg), int (*refused)(nu_status s, void *arg),
                           void *arg, long limit_kb, long *grew_kb);
/* Removes the directory when no check failed; returns nu_test_finish(name). */
int nu_hard_finish(const char *name);

#endif

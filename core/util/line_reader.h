/* Lines of a text file with a bound on their length, checked before memory
 * is spent on them: getline would allocate for a line of any length (a
 * 4 GB file without a newline is a 4 GB buffer).  A line longer than the
 * bound is reported as soon as its first max + 1 bytes are read, with its
 * first `max` bytes; a caller may refuse it naming file:line (nothing more
 * of it is read) or count it and read on (the next call skips the rest of it
 * without storing it). */
#ifndef NU_LINE_READER_H
#define NU_LINE_READER_H

#include <stddef.h>
#include <stdio.h>

typedef struct nu_line_reader {
    FILE *f;
    size_t max;    /* the longest line accepted, in bytes without its '\n' */
    size_t lineno; /* of the line last read, from 1 */
    char *line;    /* that line without its '\n', NUL-terminated (it may hold NUL bytes) */
    size_t len;    /* its length (at most max) */
    int too_long;  /* it has more than max bytes: line holds the first max of them */
    /* private */
    char *block;
    size_t block_pos, block_len, cap;
    int skip_rest; /* the rest of a too long line is still to be skipped */
} nu_line_reader;

/* Reads from `f` (not closed by the reader) lines of at most `max` bytes. */
void nu_line_reader_init(nu_line_reader *r, FILE *f, size_t max);
/* 1: the next line is in r->line; 0: end of file; -1: a read error or out
 * of memory (errno says which). */
int nu_line_reader_next(nu_line_reader *r);
void nu_line_reader_free(nu_line_reader *r);

#endif

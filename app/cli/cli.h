/* Shared helpers of the command-line tool. */
#ifndef NU_CLI_H
#define NU_CLI_H

#include <stddef.h>

#include "nextuser/nextuser.h"

/* Exit codes: 0 success, 1 the work failed, 2 bad usage or environment. */
enum { NU_EXIT_OK = 0, NU_EXIT_FAIL = 1, NU_EXIT_USAGE = 2 };

/* Prints "nextuser CMD: message" and the hint to use --help; returns 2. */
int nu_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the library's last error for CMD; returns 2 for a usage or
 * environment problem (bad NU_ISA, unsupported), 1 otherwise. */
int nu_cli_fail(const char *cmd);

/* Reports on stderr what reading the items did with imperfect input
 * (unknown users skipped, long histories cut, unknown values), if anything. */
void nu_cli_report_items(const char *cmd, const nu_batch *items, size_t max_users);
/* The same line from the counts themselves. */
void nu_cli_report_counts(const char *cmd, size_t unknown_users, size_t unknown_values,
                          size_t truncated, size_t max_users);

/* Runs command argv[0] (argv as after "nextuser"); returns its exit code. */
int nu_cli_run_command(int argc, char **argv);

/* nextuser serve's options into *out (workers and threads 0 when not
 * given); returns -1 to go on, else the exit code (help, usage error). */
struct nu_serve_config;
int nu_cli_parse_serve(int argc, char **argv, struct nu_serve_config *out);

int nu_cmd_info(int argc, char **argv);
int nu_cmd_init(int argc, char **argv);
int nu_cmd_embed(int argc, char **argv);
int nu_cmd_retrieve(int argc, char **argv);
int nu_cmd_search(int argc, char **argv);
int nu_cmd_table(int argc, char **argv);
int nu_cmd_synth(int argc, char **argv);
int nu_cmd_train(int argc, char **argv);
/* train with its processes' collectives (NULL: this process alone) and its
 * result (may be NULL), for the sharded run under mpirun (app/mpi). */
int nu_cmd_train_with(int argc, char **argv, const nu_collectives *collectives,
                      nu_training_result *result);
int nu_cmd_tune(int argc, char **argv);
int nu_cmd_synth_data(int argc, char **argv);
int nu_cmd_prepare(int argc, char **argv);
int nu_cmd_eval(int argc, char **argv);
int nu_cmd_items(int argc, char **argv);
int nu_cmd_bench(int argc, char **argv);
int nu_cmd_plan(int argc, char **argv);

#endif

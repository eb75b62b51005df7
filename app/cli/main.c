/* nextuser: the command-line tool. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#ifdef NU_HAVE_MPI /* built with MPI (NU_MPI): app/mpi */
#include "mpi/mpi_launch.h"
#endif

#ifdef NU_HAVE_SERVE /* built with libmicrohttpd (NU_BUILD_SERVE) */
/* app/cli/cmd_serve.c (the service itself is app/serve). */
int nu_cmd_serve(int argc, char **argv);
#endif


int nu_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nextuser %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'nextuser %s --help')\n", cmd);
    return NU_EXIT_USAGE;
}

int nu_cli_fail(const char *cmd)
{
    const char *msg = nu_last_error();
    fprintf(stderr, "nextuser %s: %s\n", cmd, msg[0] ? msg : "failed");
    /* Environment problems (bad NU_ISA, missing CPU support) are usage errors. */
    if (strncmp(msg, "NU_ISA=", 7) == 0 || strncmp(msg, "HWLOC_SYNTHETIC=", 16) == 0)
        return NU_EXIT_USAGE;
    return NU_EXIT_FAIL;
}

void nu_cli_report_counts(const char *cmd, size_t unknown_users, size_t unknown_values,
                          size_t truncated, size_t max_users)
{
    if (unknown_users || truncated || unknown_values)
        fprintf(stderr,
                "nextuser %s: %zu unknown user ids skipped, %zu items cut to the %zu most recent "
                "users, %zu unknown feature values mapped to <unk>\n",
                cmd, unknown_users, truncated, max_users, unknown_values);
}

void nu_cli_report_items(const char *cmd, const nu_batch *items, size_t max_users)
{
    size_t unknown_users, unknown_values, truncated;
    nu_batch_input_counts(items, &unknown_users, &unknown_values, &truncated);
    nu_cli_report_counts(cmd, unknown_users, unknown_values, truncated, max_users);
}

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"info", nu_cmd_info, "CPU features, ISAs, SLEEF, topology and threads"},
    {"init", nu_cmd_init, "write a deterministic random model from a config"},
    {"embed", nu_cmd_embed, "generate the next-user embedding of each item"},
    {"retrieve", nu_cmd_retrieve, "top-K users for each new item (generator + scoring)"},
    {"search", nu_cmd_search, "top-K users for query vectors"},
#ifdef NU_HAVE_SERVE
    {"serve", nu_cmd_serve, "HTTP/1.1 JSON service: recommend, embed, metrics, hot reload"},
#endif
    {"table", nu_cmd_table, "write a model's user table (fp32, bf16, int8) for mapping"},
    {"train", nu_cmd_train, "train the generator on a data directory"},
    {"tune", nu_cmd_tune, "the learning rate chosen on validation, within a time budget"},
    {"synth", nu_cmd_synth, "a deterministic synthetic model and table at any scale"},
    {"synth-data", nu_cmd_synth_data, "synthetic training data with planted structure"},
    {"prepare", nu_cmd_prepare, "real interaction logs (MovieLens, CSV) -> training data"},
    {"items", nu_cmd_items, "a data directory's held-out items as new-item requests"},
    {"eval", nu_cmd_eval, "cold-start Recall@K by stage: the model or a baseline"},
    {"bench", nu_cmd_bench, "end-to-end benchmarks and load scenarios vs the measured peak"},
    {"plan", nu_cmd_plan, "capacity plan (cores, memory, servers) from bench results"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nextuser COMMAND [OPTIONS]\n\n"
               "Next-User Retrieval cold-start recommender on CPUs.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'nextuser COMMAND --help' explains a command.\n"
               "Environment: NU_ISA=scalar|avx2|avx512|neon lowers the kernel ISA;\n"
               "OMP_NUM_THREADS sets threads; HWLOC_SYNTHETIC fakes a topology.\n");
}

int nu_cli_run_command(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].run(argc, argv);
    fprintf(stderr, "nextuser: unknown command '%s'\n", argv[0]);
    usage(stderr);
    return NU_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NU_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return NU_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("nextuser %s\n", nu_version());
        return NU_EXIT_OK;
    }
#ifdef NU_HAVE_MPI
    /* Only a job started by mpirun initialises MPI: a plain run pays nothing. */
    if (nu_mpi_launched())
        return nu_mpi_main(argc - 1, argv + 1);
#endif
    return nu_cli_run_command(argc - 1, argv + 1);
}

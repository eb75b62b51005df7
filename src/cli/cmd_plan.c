/* nextuser plan: placeholder until the issue-7 work lands. */
#include <stdio.h>

#include "cli.h"

int nu_cmd_plan(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "nextuser plan: not built yet\n");
    return NU_EXIT_FAIL;
}

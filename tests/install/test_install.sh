#!/usr/bin/env bash
# Installs the built project into a temporary prefix and builds a consumer
# with pkg-config against the installed header and library.
set -euo pipefail
build="$1"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/nextuser"
test -f "$prefix/include/nextuser/nextuser.h"
pc_dir="$(dirname "$(find "$prefix" -name nextuser.pc | head -1)")"
cat > "$prefix/consumer.c" <<'C'
#include <nextuser/nextuser.h>
#include <stdio.h>
int main(void)
{
    if (nu_init() != NU_OK) { fprintf(stderr, "%s\n", nu_last_error()); return 1; }
    printf("nextuser %s on %s\n", nu_version(), nu_isa_active());
    return 0;
}
C
PKG_CONFIG_PATH="$pc_dir" cc -std=c11 "$prefix/consumer.c" -o "$prefix/consumer" \
  $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs nextuser)
LD_LIBRARY_PATH="$prefix/lib:$(dirname "$pc_dir")" "$prefix/consumer"
# Static archive, its dependencies linked as shared libraries.
static_deps="$(pkg-config --libs hwloc libcjson) -lsleef -fopenmp -lpthread -lm"
cc -std=c11 -I"$prefix/include" "$prefix/consumer.c" -o "$prefix/consumer_static" \
  "$(dirname "$pc_dir")/libnextuser.a" $static_deps
"$prefix/consumer_static"
echo "1 passed, 0 failed"

#!/usr/bin/env bash
# The examples (examples/recommend.c, examples/recommend.cpp) built the way
# examples/README.md says -- against an installed copy through pkg-config --
# print exactly what `nextuser retrieve` writes: byte for byte, for a few
# items files and K values, at several thread counts.  Their error paths
# exit 1 with the library's message.
# Usage: test_examples.sh BUILD_DIR NEXTUSER_EXE
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR NEXTUSER_EXE" >&2
    exit 2
fi
build="$1"
nu="$2"
src="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/nu_examples_XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

die() {
    echo "FAIL: $*"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
}

check() { # check STATUS WHAT
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $2"
    fi
}

# ---- install, then build both examples against the install -----------------
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; die "cmake --install $build"; }
pc="$(find "$prefix" -name nextuser.pc | head -1)"
so="$(find "$prefix" -name libnextuser.so | head -1)"
[ -n "$pc" ] || die "no nextuser.pc under the install"
[ -n "$so" ] || die "no libnextuser.so under the install"
PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_PATH
libdir="$(dirname "$so")"
# Split into words as a shell would (pkg-config prints one line).
read -r -a flags <<<"$(pkg-config --cflags --libs nextuser)" ||
    die "pkg-config --cflags --libs nextuser"

# Warnings are errors: the examples are meant to be copied into projects
# with strict flags, and the header must stay clean under them.
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/examples/recommend.c" -o "$tmp/recommend_c" \
    "${flags[@]}" >"$tmp/cc.log" 2>&1
rc=$?
check $rc "cc -std=c11 examples/recommend.c"
[ $rc -eq 0 ] || cat "$tmp/cc.log"
c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror "$src/examples/recommend.cpp" \
    -o "$tmp/recommend_cpp" "${flags[@]}" >"$tmp/cxx.log" 2>&1
rc=$?
check $rc "c++ -std=c++17 examples/recommend.cpp"
[ $rc -eq 0 ] || cat "$tmp/cxx.log"
if [ ! -x "$tmp/recommend_c" ] || [ ! -x "$tmp/recommend_cpp" ]; then
    die "the examples did not build"
fi
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# They must run on the installed shared library, not the build tree's or a
# static copy.
for ex in recommend_c recommend_cpp; do
    ldd "$tmp/$ex" | grep -q "libnextuser.so.0 => $libdir/libnextuser.so.0"
    check $? "$ex loads libnextuser.so.0 from $libdir"
done

# ---- a small model and items, with the CLI ---------------------------------
d="$tmp/data"
m="$tmp/model"
"$nu" synth-data --users 300 --items 200 --seed 3 --out "$d" >/dev/null 2>&1 || die "synth-data"
"$nu" train --data "$d" --out "$m" --epochs 2 --batch 64 --seed 1 --threads 2 >/dev/null 2>&1 ||
    die "train"
# The test split at stage 2 (fewer items than one call takes), and the
# train split at stage 1 (more than two calls of 64).
"$nu" items --data "$d" --split test --stage 2 --out "$tmp/test.jsonl" >/dev/null 2>&1 ||
    die "items --split test"
"$nu" items --data "$d" --split train --stage 1 --out "$tmp/train.jsonl" >/dev/null 2>&1 ||
    die "items --split train"
n_train="$(wc -l <"$tmp/train.jsonl")"
[ "$n_train" -gt 128 ] || die "train.jsonl has $n_train items, want more than 128"
# Blank lines (skipped by both) and a last line without its newline.
awk '{ print } NR % 10 == 0 { print ""; print "  \t" }' "$tmp/train.jsonl" |
    head -c -1 >"$tmp/ragged.jsonl"

# expect NAME ITEMS K: the CLI's CSV for these items, in batches of 64 like
# the examples (a score's last digit may depend on how many items share a
# call; see examples/README.md).  K "" means the default.
expect() {
    local kargs=()
    [ -n "$3" ] && kargs=(--k "$3")
    "$nu" retrieve --model "$m" --items "$2" --out "$tmp/$1.csv" --batch 64 "${kargs[@]}" \
        >/dev/null 2>&1 || die "retrieve $1"
}

# same EXAMPLE NAME ITEMS K [ENV...]: the example's stdout equals the CLI's.
same() {
    local ex="$1" name="$2" items="$3" k="$4"
    shift 4
    local what kargs=()
    what="$ex $(basename "$items") K=${k:-default}${*:+ ($*)}"
    [ -n "$k" ] && kargs=("$k")
    env "$@" "$tmp/$ex" "$m" "$items" "${kargs[@]}" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        check 1 "$what: exit $rc: $(cat "$tmp/err")"
        return
    fi
    cmp "$tmp/out" "$tmp/$name.csv" >"$tmp/cmp" 2>&1
    rc=$?
    check $rc "$what: stdout differs from nextuser retrieve: $(cat "$tmp/cmp")"
    [ $rc -eq 0 ] || diff "$tmp/out" "$tmp/$name.csv" | head -6
}

expect test_k20 "$tmp/test.jsonl" 20
expect test_kdefault "$tmp/test.jsonl" ""
expect test_k500 "$tmp/test.jsonl" 500 # more than the users: lists end early
expect train_k20 "$tmp/train.jsonl" 20
for ex in recommend_c recommend_cpp; do
    same $ex test_k20 "$tmp/test.jsonl" 20
    same $ex test_kdefault "$tmp/test.jsonl" ""
    same $ex test_k500 "$tmp/test.jsonl" 500
    same $ex train_k20 "$tmp/train.jsonl" 20
    same $ex train_k20 "$tmp/ragged.jsonl" 20
done

# Thread count must not change a single bit.  The examples leave threads at
# one per core, so a fake topology sets theirs (1, 3, and 6 over two
# packages); the CLI's is --threads.
for syn in "core:1 pu:1" "core:3 pu:1" "package:2 core:3 pu:1"; do
    same recommend_c train_k20 "$tmp/train.jsonl" 20 HWLOC_SYNTHETIC="$syn"
done
for t in 1 3; do
    "$nu" retrieve --model "$m" --items "$tmp/train.jsonl" --out "$tmp/t$t.csv" --batch 64 \
        --k 20 --threads $t >/dev/null 2>&1 || die "retrieve --threads $t"
    cmp -s "$tmp/t$t.csv" "$tmp/train_k20.csv"
    check $? "nextuser retrieve --threads $t differs from the default thread count"
done

# The header alone when there are no items.
: >"$tmp/empty.jsonl"
printf 'item,rank,user,score\n' >"$tmp/empty_k20.csv"
for ex in recommend_c recommend_cpp; do
    same $ex empty_k20 "$tmp/empty.jsonl" 20
done

# ---- errors: exit 1, the message on stderr ---------------------------------
head -3 "$tmp/test.jsonl" >"$tmp/bad.jsonl"
echo '{"id": "x", "colour": "red"}' >>"$tmp/bad.jsonl"

# fails EXAMPLE WHAT PATTERN ARGS...: exit 1 and stderr matching PATTERN.
fails() {
    local ex="$1" what="$2" pattern="$3"
    shift 3
    "$tmp/$ex" "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    [ $rc -eq 1 ] && grep -Eq "$pattern" "$tmp/err"
    check $? "$ex $what: want exit 1 and /$pattern/ on stderr, got exit $rc: $(cat "$tmp/err")"
}
for ex in recommend_c recommend_cpp; do
    fails $ex "bad line" 'bad\.jsonl:4: .*colour' "$m" "$tmp/bad.jsonl" 20
    fails $ex "no model" 'nu_model_load: .*nothere' "$tmp/nothere" "$tmp/test.jsonl"
    fails $ex "no items" 'nothere\.jsonl' "$m" "$tmp/nothere.jsonl"
    fails $ex "bad K" 'K must be' "$m" "$tmp/test.jsonl" 0
    fails $ex "usage" 'usage' "$m"
    NU_ISA=bogus "$tmp/$ex" "$m" "$tmp/test.jsonl" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q 'nu_init: .*bogus' "$tmp/err"
    check $? "$ex NU_ISA=bogus: want exit 1 and nu_init's message, got exit $rc: $(cat "$tmp/err")"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Every command that writes an output (--out, --json, table's DIR) refuses to
# take over what nextuser did not write: a foreign directory (files and a
# subdirectory) and a symbolic link to one are refused with exit 1, a message
# naming the path, and every foreign file, the link and its target unchanged,
# nothing left beside them.  Re-running onto nextuser's own output, an empty
# directory, and a model directory from before the marker still work.
# Usage: test_out_safety.sh NEXTUSER [EMULATOR ARGS...] (the command to run).
set -u
nu=("$@")
tmp="$(mktemp -d "${TMPDIR:-/tmp}/nu_out_safety_XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() { # check CONDITION-STATUS WHAT
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $2"
    fi
}

# run ARGS...: the command's status in $rc, its stderr in $err.
run() {
    "${nu[@]}" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    err="$(cat "$tmp/stderr")"
}

# A foreign directory: two files and a subdirectory with a file.
make_foreign() {
    rm -rf "$1"
    mkdir -p "$1/sub"
    echo "keep a" >"$1/a.txt"
    echo "keep b" >"$1/sub/b.txt"
}

foreign_intact() {
    [ "$(ls -A "$1" | tr '\n' ' ')" = "a.txt sub " ] &&
        [ "$(cat "$1/a.txt")" = "keep a" ] &&
        [ "$(ls -A "$1/sub")" = "b.txt" ] &&
        [ "$(cat "$1/sub/b.txt")" = "keep b" ]
}

# Nothing beside PATH: no temporary or old copies.
nothing_beside() {
    local base
    base="$(basename "$1")"
    [ -z "$(ls -A "$(dirname "$1")" | grep -F -e "$base.tmp." -e "$base.old.")" ]
}

# ---- inputs: tiny data, a one-epoch model, items, queries ----
cd "$tmp" || exit 2
echo '{"d": 16, "heads": 2, "max_users": 4, "num_users": 30}' >cfg.json
printf 'user,item,timestamp,signal\nu1,i1,1,5\nu2,i1,2,4\nu1,i2,3,1\nu3,i2,4,positive\n' >r.csv
echo '{"id": "a", "users": ["u1", "u2"]}' >items.jsonl
echo '{"id": "b", "users": []}' >>items.jsonl
run synth-data --users 40 --items 30 --groups 2 --out data
check $rc "synth-data: $err"
run train --data data --out model --epochs 1 --batch 64
check $rc "train: $err"
run embed --model model --items items.jsonl --out q.tsv
check $rc "embed: $err"

# The commands, with @ where the output goes: directories, then files.
dir_commands=(
    "init --config cfg.json --out @"
    "synth --users 50 --dim 16 --dtypes fp32 --out @"
    "synth-data --users 40 --items 30 --groups 2 --out @"
    "prepare --ratings r.csv --format csv --out @"
    "train --data data --out @ --epochs 1 --batch 64"
    "tune --data data --out @ --epochs 1 --batch 64 --lrs 1e-3"
)
file_commands=(
    "embed --model model --items items.jsonl --out @"
    "retrieve --model model --items items.jsonl --k 5 --out @"
    "search --model model --queries q.tsv --k 5 --out @"
    "eval --data data --baseline popular --k 5 --stages 0,1 --json @"
    "items --data data --split train --stage 1 --out @"
    "bench --suite infer --quick --threads 1 --reps 1 --rep-seconds 0.01 --json @"
)

expand() { # expand TEMPLATE PATH: the template's words with @ replaced
    local w out=()
    for w in $1; do
        if [ "$w" = @ ]; then out+=("$2"); else out+=("$w"); fi
    done
    printf '%s\n' "${out[@]}"
}

# ---- (a) a foreign directory, (b) a symbolic link to one ----
for template in "${dir_commands[@]}" "table --model @" "${file_commands[@]}"; do
    name="${template%% *}"
    rm -rf "$tmp"/foreign* "$tmp"/link* "$tmp"/real*
    make_foreign "$tmp/foreign"
    mapfile -t args < <(expand "$template" "$tmp/foreign")
    run "${args[@]}"
    [ "$rc" -eq 1 ] && grep -qF "$tmp/foreign" <<<"$err"
    check $? "$name onto a foreign directory: exit $rc (want 1), message naming it: $err"
    if [ "$name" != table ]; then # table reads the model first: not a model
        grep -qE "not written by nextuser|is a directory" <<<"$err"
        check $? "$name onto a foreign directory: the message says why: $err"
    fi
    foreign_intact "$tmp/foreign"
    check $? "$name onto a foreign directory: its files are unchanged"
    nothing_beside "$tmp/foreign"
    check $? "$name onto a foreign directory: nothing left beside it: $(ls "$tmp" | tr '\n' ' ')"

    make_foreign "$tmp/real"
    ln -s real "$tmp/link"
    mapfile -t args < <(expand "$template" "$tmp/link")
    run "${args[@]}"
    [ "$rc" -eq 1 ] && grep -qF "$tmp/link" <<<"$err"
    check $? "$name onto a symlink: exit $rc (want 1), message naming it: $err"
    if [ "$name" != table ]; then
        grep -qF "symbolic link" <<<"$err"
        check $? "$name onto a symlink: the message says why: $err"
    fi
    [ -L "$tmp/link" ] && [ "$(readlink "$tmp/link")" = real ]
    check $? "$name onto a symlink: the link is unchanged"
    foreign_intact "$tmp/real"
    check $? "$name onto a symlink: the link's target is unchanged"
    nothing_beside "$tmp/link" && nothing_beside "$tmp/real"
    check $? "$name onto a symlink: nothing left beside it: $(ls "$tmp" | tr '\n' ' ')"
done

# ---- nextuser's own outputs are replaced; empty directories accepted ----
for template in "${dir_commands[@]}"; do
    name="${template%% *}"
    rm -rf "$tmp/own"
    mkdir "$tmp/own"
    mapfile -t args < <(expand "$template" "$tmp/own")
    run "${args[@]}"
    check $rc "$name onto an empty directory: $err"
    [ -f "$tmp/own/.nextuser-dir" ]
    check $? "$name writes the marker .nextuser-dir"
    run "${args[@]}"
    check $rc "$name onto its own previous output: $err"
    nothing_beside "$tmp/own"
    check $? "$name: nothing left beside its output: $(ls "$tmp" | tr '\n' ' ')"
done
for template in "${file_commands[@]}"; do
    name="${template%% *}"
    mapfile -t args < <(expand "$template" "$tmp/out.file")
    run "${args[@]}"
    check $rc "$name writes its file: $err"
    run "${args[@]}"
    check $rc "$name replaces its own file: $err"
    rm -f "$tmp/out.file"
done

# table: into a model directory twice, then where its file is someone's directory.
cp -r model tabled
run table --model tabled --dtypes fp32
check $rc "table: $err"
run table --model tabled --dtypes fp32
check $rc "table again: $err"
rm tabled/user_table.safetensors
make_foreign tabled/user_table.safetensors
run table --model tabled --dtypes fp32
[ "$rc" -eq 1 ] && grep -qF "is a directory" <<<"$err"
check $? "table where user_table.safetensors is a directory: exit $rc: $err"
foreign_intact tabled/user_table.safetensors
check $? "table: that directory is unchanged"

# An output file that is a symlink to a file: the link is replaced, the target kept.
echo "keep t" >target.txt
ln -s target.txt link.tsv
run embed --model model --items items.jsonl --out link.tsv
check $rc "embed onto a symlink to a file: $err"
[ ! -L link.tsv ] && [ "$(cat target.txt)" = "keep t" ] && [ -s link.tsv ]
check $? "embed onto a symlink to a file: the link is replaced, its target unchanged"

# A model directory written before the marker existed is still replaced.
rm -rf legacy
cp -r model legacy
rm -f legacy/.nextuser-dir
run init --config cfg.json --out legacy
check $rc "init onto a marker-less model directory: $err"
run train --data data --out legacy --epochs 1 --batch 64
check $rc "train onto a marker-less model directory: $err"

echo "cli_out_safety: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

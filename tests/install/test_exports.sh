#!/usr/bin/env bash
# The shared library exports exactly the functions the public headers
# declare with NU_API -- no internal symbol leaks, no declared function is
# missing -- each at version NEXTUSER_0, and its SONAME is libnextuser.so.0.
# Usage: test_exports.sh BUILD_DIR SOURCE_DIR
set -u
export LC_ALL=C # one collation for sort and comm
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build="$1"
srcdir="$2"
lib="$build/libnextuser.so"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/nu_exports_XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() { # check STATUS WHAT
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $2"
    fi
}

if [ ! -e "$lib" ]; then
    echo "FAIL: no $lib"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- what the headers declare ------------------------------------------------
# Comments and preprocessor lines go first (the NU_API #define itself, and
# prose that mentions NU_API), then the text is cut into declarations at
# ';', '{' and '}', so a declaration spanning lines is one piece; the name
# is the identifier just before the first '(' of a piece that holds NU_API.
headers=("$srcdir"/include/nextuser/*.h)
[ -e "${headers[0]}" ] || { echo "FAIL: no headers under $srcdir/include/nextuser"; exit 1; }
python3 - "${headers[@]}" >"$tmp/declared.raw" <<'PY' || { echo "FAIL: parsing the headers"; exit 1; }
import re, sys
names = []
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", "", text, flags=re.M)
    for piece in re.split(r"[;{}]", text):
        if re.search(r"\bNU_API\b", piece) and "(" in piece:
            # The first identifier called like a function that is not an
            # all-caps macro (an attribute): right for "T *f(...)" and for
            # "T (*f(...))(...)" alike.
            found = [w for w in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", piece)
                     if not re.fullmatch(r"[A-Z0-9_]+", w)]
            if not found:
                sys.exit("no function name in: " + " ".join(piece.split()))
            names.append(found[0])
print("\n".join(names))
PY
sort -u "$tmp/declared.raw" | sed '/^$/d' >"$tmp/declared"

# ---- what the library exports -----------------------------------------------
# Defined dynamic symbols, less the version node NEXTUSER_0 itself (an
# absolute symbol); each name must carry @@NEXTUSER_0.
nm -D --defined-only "$lib" >"$tmp/nm" || { echo "FAIL: nm -D $lib"; exit 1; }
awk '$3 != "NEXTUSER_0" { print $3 }' "$tmp/nm" >"$tmp/versioned"
grep -v '@@NEXTUSER_0$' "$tmp/versioned" >"$tmp/unversioned"
[ ! -s "$tmp/unversioned" ]
check $? "exported without version NEXTUSER_0: $(tr '\n' ' ' <"$tmp/unversioned")"
# Only functions (T/W/i) may leave; data symbols would be ABI too.
awk '$3 != "NEXTUSER_0" && $2 !~ /^[TtWi]$/ { print $3 " (" $2 ")" }' "$tmp/nm" >"$tmp/nonfunc"
[ ! -s "$tmp/nonfunc" ]
check $? "exported symbols that are not functions: $(tr '\n' ' ' <"$tmp/nonfunc")"
sed 's/@.*//' "$tmp/versioned" | sort >"$tmp/exported"

[ -s "$tmp/declared" ]
check $? "found no NU_API declarations in ${headers[*]}"
if cmp -s "$tmp/declared" "$tmp/exported"; then
    check 0 ""
else
    check 1 "the exports differ from the NU_API declarations"
    echo "  declared with NU_API but not exported:"
    comm -23 "$tmp/declared" "$tmp/exported" | sed 's/^/    /'
    echo "  exported but not declared with NU_API:"
    comm -13 "$tmp/declared" "$tmp/exported" | sed 's/^/    /'
fi

# ---- SONAME -------------------------------------------------------------------
soname="$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
[ "$soname" = "libnextuser.so.0" ]
check $? "SONAME is \"$soname\", want libnextuser.so.0"

echo "$(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") declared"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env python3
"""The layers of the tree (docs/architecture.md) from the #include "..."
lines: a layer never reaches up, and the CLI uses the library's public API.

Each quoted include is resolved as the compiler would (the including file's
own directory first, then include/, core/, kernels/, src/, app/ in the order
of NU_CORE_INC < NU_KERNEL_INC < NU_LIB_INC < NU_APP_INC), and the layer of
the header it names decides:

  core/    may not include kernels/, src/ or app/ headers
  kernels/ may not include src/ or app/ headers
  src/     may not include app/ headers
  app/cli/ may not include src/ (library) or kernels/ headers: it uses
           include/nextuser, its own headers, app-layer headers and core
           utilities

An include that resolves nowhere is an error too (a typo, or a header from
a directory this check does not know).  Usage: check_includes.py [SOURCE_DIR]
"""
import os
import re
import sys

LAYERS = ["include", "core", "kernels", "src", "app"]  # the -I order, lowest first
FORBIDDEN = {  # layer of the including file -> layers it may not include
    "core": {"kernels", "src", "app"},
    "kernels": {"src", "app"},
    "src": {"app"},
    "app/cli": {"kernels", "src"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of a path relative to the root ('app/cli' is its own)."""
    parts = rel.split("/")
    if parts[:2] == ["app", "cli"]:
        return "app/cli"
    return parts[0] if parts[0] in LAYERS else None


def resolve(root, rel_file, name):
    """The path (relative to root) that `#include "name"` in rel_file reads."""
    own = os.path.dirname(rel_file)
    for d in [own] + LAYERS:
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand.replace(os.sep, "/")
    return None


def check(root):
    problems, files = [], 0
    for top in LAYERS[1:]:
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if not n.endswith((".c", ".h", ".cc", ".cpp", ".inc")):
                    continue
                path = os.path.join(dirpath, n)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                src_layer = layer_of(rel)
                files += 1
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for m in INCLUDE.finditer(text):
                    line = text.count("\n", 0, m.start()) + 1
                    name = m.group(1)
                    target = resolve(root, rel, name)
                    if target is None:
                        problems.append(f'{rel}:{line}: "{name}" resolves to no file of '
                                        f'{", ".join(LAYERS)} nor {os.path.dirname(rel)}/')
                        continue
                    t_layer = layer_of(target)
                    if t_layer == "app/cli":
                        t_layer = "app"
                    if t_layer in FORBIDDEN.get(src_layer, set()):
                        why = ("the CLI uses the public API (include/nextuser), not the "
                               "library's internals" if src_layer == "app/cli"
                               else "a layer never includes a higher one")
                        problems.append(f'{rel}:{line}: includes "{name}" ({target}, layer '
                                        f'{t_layer}) from layer {src_layer}: {why}')
    return files, problems


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))
    files, problems = check(root)
    for p in problems:
        print("FAIL:", p)
    if files == 0:
        print(f"FAIL: no source files under {root}")
        return 1
    print(f"{files} files checked, {len(problems)} layer violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Lists import cycles between the files of a Rust crate (issue 15: "no import cycles").

A file A "imports" file B when A names a path that resolves into B: `crate::x::y` anywhere in
its code (use declarations and inline paths alike), `super::…` and `self::…` relative to A's
module. Paths are resolved against the module tree found on disk (`x.rs` or `x/mod.rs`), as far
as they go: `crate::camera::registry::Status` resolves to src/camera/registry.rs. Comments and
strings are not stripped, so a doc link counts too: it is a dependency of the reader, if not of
the compiler. Prints each strongly connected component with more than one file, and exits 1 if
there is any.

Usage: scripts/import-cycles.py [CRATE_SRC_DIR ...]   (default: src cores/src)
"""
import os
import re
import sys


def module_files(src):
    """Maps module paths (tuples) to files for the crate rooted at src/lib.rs."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            if rel and rel[0] == "bin":
                continue
            mods[tuple(rel)] = path
    return mods


PATH_RE = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
CHILD_RE = re.compile(r"(?<![\w:])([a-z_][a-z0-9_]*(?:::\w+)+)")
GROUP_RE = re.compile(r"\b(crate|super|self)((?:::\w+)*)::\{([^{}]*)\}")


def resolve(mods, base, segs):
    """The file of the longest prefix of base+segs that is a module."""
    full = list(base) + segs
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in mods:
            return mods[tuple(full[:n])]
    return None


def imports(mods, modpath, path):
    text = open(path, encoding="utf-8").read()
    out = set()
    # A file that is `x.rs` or `x/mod.rs` is module x; `super` is its parent.
    def base_of(kind):
        if kind == "crate":
            return ()
        if kind == "self":
            return modpath
        return modpath[:-1]

    found = []
    for m in GROUP_RE.finditer(text):
        kind, head, inner = m.group(1), m.group(2), m.group(3)
        head_segs = [s for s in head.split("::") if s]
        for item in inner.split(","):
            item = item.strip().split(" as ")[0]
            segs = head_segs + [s for s in item.split("::") if s and s != "self"]
            found.append((kind, segs))
    for m in PATH_RE.finditer(text):
        found.append((m.group(1), [s for s in m.group(2).split("::") if s]))
    # A bare path that starts with a child module's name (`jwt::verify` in auth/mod.rs): child
    # modules are in scope in the module that declares them.
    for m in CHILD_RE.finditer(text):
        segs = [s for s in m.group(1).split("::") if s]
        if modpath + (segs[0],) in mods:
            found.append(("self", segs))
    for kind, segs in found:
        base = base_of(kind)
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        f = resolve(mods, base, segs)
        if f and f != path:
            out.add(f)
    return out


def sccs(graph):
    index, low, stack, on, res = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            res.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return res


def main():
    roots = sys.argv[1:] or ["src", "cores/src"]
    bad = 0
    for src in roots:
        mods = module_files(src)
        # A module file's own parent (`mod.rs` declaring `pub mod x;`) is not an import.
        graph = {}
        for modpath, path in mods.items():
            deps = imports(mods, modpath, path)
            # The crate root declares every module; leave it out, as `mod x;` is not a use.
            graph[path] = {d for d in deps if d not in (mods.get(()),)}
        for comp in sccs(graph):
            if len(comp) > 1:
                bad += 1
                print(f"cycle ({len(comp)} files): " + " ".join(sorted(comp)))
    if bad:
        print(f"{bad} import cycle(s)")
        return 1
    print("no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Top-level module graph of one crate's src/: an edge A -> B when a file of module A names
`crate::B` or `super::B` (from a top-level file) or `use crate::{B, ...}`; prints cycles (SCCs)."""
import os, re, sys
root = sys.argv[1]
mods = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'): continue
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[0].removesuffix('.rs')
        if top in ('lib', 'main'): continue
        mods.setdefault(top, []).append((path, rel.count(os.sep)))
names = set(mods)
edges = {m: set() for m in names}
for m, files in mods.items():
    for path, depth in files:
        text = open(path).read()
        text = re.sub(r'//[^\n]*', '', text)
        for b in re.findall(r'crate::([a-z_]+)', text):
            if b in names and b != m: edges[m].add(b)
        for group in re.findall(r'crate::\{([^}]*)\}', text):
            for b in re.findall(r'\b([a-z_]+)\b', group):
                if b in names and b != m: edges[m].add(b)
        if depth == 0:
            for b in re.findall(r'super::([a-z_]+)', text):
                if b in names and b != m: edges[m].add(b)
            for group in re.findall(r'super::\{([^}]*)\}', text):
                for b in re.findall(r'\b([a-z_]+)\b', group):
                    if b in names and b != m: edges[m].add(b)
# Tarjan
index = {}; low = {}; stack = []; on = set(); sccs = []; counter = [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        scc = []
        while True:
            w = stack.pop(); on.discard(w); scc.append(w)
            if w == v: break
        if len(scc) > 1: sccs.append(sorted(scc))
sys.setrecursionlimit(10000)
for v in sorted(names):
    if v not in index: strong(v)
print(f"{root}: {len(names)} modules, {len(sccs)} cycles")
for scc in sccs: print("  cycle:", " <-> ".join(scc))

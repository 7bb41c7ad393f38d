#!/usr/bin/env python3
"""Checks that every folder's #include "..." lines point only downward.

Usage: check-layers.py [SOURCE_ROOT]

The layers, lowest first, are the table LAYERS below (docs/architecture.md
draws the same picture). A file may include headers of its own folder and of
folders of a strictly lower rank; two folders of the same rank may not include
each other, so there is no cycle. Prints every offending include as
FILE:LINE: FOLDER (rank R) includes HEADER of FOLDER (rank R'), and exits 1 if
there is any, 0 otherwise.
"""
import os
import re
import sys

# folder -> rank. A folder not listed (a new one) is an error, so that the
# table is kept up to date.
LAYERS = {
    "base": 0,  # Status, LMDB wrapper, OS helpers, TIME parsing
    "protocol": 1,  # broker <-> agent <-> roamctl wire protocol
    "fusefs/store": 1,  # LMDB tables, segments, transactions
    "fusefs/oplog": 2,  # the op log and past views
    "fusefs/engine": 3,  # POSIX semantics over the store
    "fusefs/gc": 4,  # retention, GC, compaction
    "fusefs/history": 4,  # restore, moments, versions
    "fusefs/control": 5,  # roamctl <-> roamfs control socket
    "fusefs/fuse": 6,  # roamfs: FUSE ops and the daemon
    "broker": 6,  # roam-broker
    "agent": 6,  # roam-agent
    "tools/roamctl": 7,
    "tools/roam": 7,  # roam: the desktop users' command
    "tools/bench": 7,
    "tests": 8,
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SKIP_DIRS = {".git", ".ci"}


def folder_of(path):
    """The layer a repository-relative path belongs to (longest match)."""
    best = None
    for folder in LAYERS:
        if path == folder or path.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best


def source_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [
            d for d in dirnames
            if d not in SKIP_DIRS and not d.startswith("build")
        ]
        for name in filenames:
            if name.endswith((".h", ".cc", ".c", ".hpp", ".cpp")):
                yield os.path.normpath(os.path.join(rel_dir, name))


def check(root):
    problems = []
    for path in sorted(source_files(root)):
        src = folder_of(path)
        if src is None:
            problems.append(f"{path}: folder not in the layer table of {sys.argv[0]}")
            continue
        with open(os.path.join(root, path), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m or "/" not in m.group(1):
                    continue
                header = m.group(1)
                dst = folder_of(header)
                if dst is None:
                    problems.append(f"{path}:{lineno}: includes {header}, which is in no layer")
                elif dst != src and LAYERS[dst] >= LAYERS[src]:
                    problems.append(
                        f"{path}:{lineno}: {src} (rank {LAYERS[src]}) includes {header} "
                        f"of {dst} (rank {LAYERS[dst]})")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    problems = check(os.path.abspath(root))
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} include(s) point upward or sideways")
        return 1
    print("check-layers: every include points downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())

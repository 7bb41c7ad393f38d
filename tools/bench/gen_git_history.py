"""Prints the git workload's history as a git fast-import stream: usage
gen_git_history.py NFILES NCOMMITS | git fast-import.

NCOMMITS commits on refs/heads/main: the first adds NFILES text files under
src/, each later one rewrites 20 of them. Seed, authors and dates are fixed,
so the commits (and their hashes) are the same on every run."""
import random, sys
nfiles, ncommits = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(99)
out = sys.stdout.buffer
words = [f"w{i}" for i in range(2000)]
def content():
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(5, 120))]
    return ("\n".join(lines) + "\n").encode()
paths = [f"src/m{i % 25:02d}/file{i:03d}.txt" for i in range(nfiles)]
t = 1767225600
for c in range(ncommits):
    changed = paths if c == 0 else rng.sample(paths, 20)
    msg = f"commit {c}\n".encode()
    out.write(b"commit refs/heads/main\n")
    out.write(f"mark :{c + 1}\n".encode())
    for who in (b"author", b"committer"):
        out.write(who + f" Bench <bench@example.invalid> {t + c * 3600} +0000\n".encode())
    out.write(f"data {len(msg)}\n".encode() + msg)
    if c > 0:
        out.write(f"from :{c}\n".encode())
    for p in changed:
        data = content()
        out.write(f"M 100644 inline {p}\ndata {len(data)}\n".encode() + data + b"\n")
    out.write(b"\n")

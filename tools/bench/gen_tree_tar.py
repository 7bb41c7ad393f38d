"""Writes the tree workload's tar: usage gen_tree_tar.py OUT NFILES NTOP NSUB MAXSIZE.

NTOP x NSUB leaf directories (tree/dNN/sNN) hold NFILES files of random sizes
up to MAXSIZE bytes, spread round-robin. The seed and the mtimes are fixed, so
the tar has the same bytes on every run."""
import io, random, sys, tarfile
out, nfiles, ntop, nsub, maxsize = sys.argv[1], *map(int, sys.argv[2:])
rng = random.Random(20261127)
mtime = 1767225600  # fixed: 2026-01-01
leaves = [f"tree/d{a:02d}/s{b:02d}" for a in range(ntop) for b in range(nsub)]
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
    def add_dir(path):
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
        tar.addfile(ti)
    add_dir("tree")
    for a in range(ntop):
        add_dir(f"tree/d{a:02d}")
    for leaf in leaves:
        add_dir(leaf)
    for i in range(nfiles):
        leaf = leaves[i % len(leaves)]
        size = rng.randint(0, maxsize)
        ti = tarfile.TarInfo(f"{leaf}/f{i:05d}.dat")
        ti.size, ti.mode, ti.mtime = size, 0o644, mtime
        tar.addfile(ti, io.BytesIO(rng.randbytes(size)))

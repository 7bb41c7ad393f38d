"""Writes the 1 GiB of random bytes the seqio and randio workloads read: usage
gen_random_file.py OUT. The seed is fixed, so the bytes are too."""
import random, sys
rng = random.Random(4242)
with open(sys.argv[1], "wb") as f:
    for _ in range(1024):
        f.write(rng.randbytes(1 << 20))

"""Writes the sqlite workload's SQL: usage gen_sqlite_sql.py OUT NINSERTS.

A table with an index, then NINSERTS INSERTs of a random key and 200 random
letters, each its own transaction. The seed is fixed, so the bytes are too."""
import random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
with open(out, "w") as f:
    f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, v TEXT NOT NULL);\n")
    f.write("CREATE INDEX t_k ON t(k);\n")
    for i in range(n):  # autocommit: every INSERT is its own transaction
        v = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(200))
        f.write(f"INSERT INTO t(k, v) VALUES('key-{rng.randrange(10**9):09d}', '{v}');\n")

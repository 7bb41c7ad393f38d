"""bench-restore's gc step: usage gc_stall.py MOUNTPOINT ROAMCTL.

Runs `ROAMCTL gc MOUNTPOINT` while a thread keeps creating, writing, closing
and stat-ing small files on the disk, and prints one line: how long gc took,
what it freed, and the median and longest latency of the concurrent
operations (the stall gc caused)."""
import os, subprocess, sys, threading, time
mnt, roamctl = sys.argv[1], sys.argv[2]
lat, stop = [], False
def writer():
    i = 0
    while not stop:
        t = time.monotonic()
        fd = os.open(f"{mnt}/w{i % 50}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"x" * 4096)
        os.close(fd)
        os.stat(f"{mnt}/w{i % 50}")
        lat.append(time.monotonic() - t)
        i += 1
th = threading.Thread(target=writer)
th.start()
time.sleep(0.5)
n0 = len(lat)
t = time.monotonic()
r = subprocess.run([roamctl, "gc", mnt], capture_output=True, text=True)
took = time.monotonic() - t
stop = True
th.join()
during = sorted(lat[n0:]) or [0.0]
freed = r.stdout.splitlines()[0] if r.returncode == 0 else r.stderr.strip()
print(f"{took:.2f} s ({freed}); {len(during)} concurrent ops, median {during[len(during) // 2] * 1e3:.2f} ms, max {during[-1] * 1e3:.1f} ms")

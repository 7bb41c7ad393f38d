"""Prints tools/bench/bench's table: usage bench_report.py RESULTS_TSV RUNS ROW...

RESULTS_TSV has a line per timed step (ROW TARGET RUN SECONDS|FAIL) and a line
per workload with roamfs's memory (rss GROUP VMRSS_KIB VMHWM_KIB). Prints, for
each ROW in the order given, the median of each target and the ratios of roamfs
to plain and to passthrough_ll (and, when the remote target ran, of remote to
roamfs and to passthrough_ll), then roamfs's resident memory."""
import statistics, sys
path, runs, order = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
targets = ["plain", "passthrough_ll", "roamfs"]
vals, fails, rss = {}, set(), []
ratios = [("roamfs", "plain"), ("roamfs", "passthrough_ll")]
with open(path) as f:
    for line in f:
        parts = line.rstrip("\n").split("\t")
        if parts[0] == "rss":
            rss.append((parts[1], int(parts[2]), int(parts[3])))
            continue
        row, t, _run, v = parts
        if v == "FAIL":
            fails.add((row, t))
        else:
            vals.setdefault((row, t), []).append(float(v))
if any(t == "remote" for _, t in [*vals, *fails]):
    targets.append("remote")
    ratios += [("remote", "roamfs"), ("remote", "passthrough_ll")]
def med(row, t):
    if (row, t) in fails:
        return "FAIL"
    v = vals.get((row, t))
    return statistics.median(v) if v else None
def cell(m):
    return "FAIL" if m == "FAIL" else "-" if m is None else f"{m:.3f}"
def ratio(a, b):
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return f"{a / b:.2f}x"
    return "-"
head = ["workload (median s)", *targets, *(f"{a}/{b}" for a, b in ratios)]
rows = []
for row in order:
    m = {t: med(row, t) for t in targets}
    rows.append([row, *(cell(m[t]) for t in targets), *(ratio(m[a], m[b]) for a, b in ratios)])
w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
fmt = lambda r: "  ".join(c.ljust(w[0]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
print(fmt(head))
print("  ".join("-" * x for x in w))
for r in rows:
    print(fmt(r))
print(f"({runs} run(s) per cell; FAIL: at least one run failed; -: not run)")
if rss:
    print("roamfs resident memory after each workload (VmRSS, peak VmHWM):")
    for g, r, h in rss:
        print(f"  {g:<8} {r / 1024:8.1f} MiB  (peak {h / 1024:.1f} MiB)")
    print(f"roamfs VmRSS after the run: {rss[-1][1] / 1024:.1f} MiB; "
          f"highest peak: {max(h for _, _, h in rss) / 1024:.1f} MiB")

# Usage: python3 bench/cpu-rounds.py [ROUNDS] [BEFORE_BERT_DLL] [AFTER_BERT_DLL]   (two published builds: dotnet publish src/BertSharp.Cli -c Release -o DIR)
# Alternating before/after runs of `bert bench` on one thread; compares the child processes' CPU time (user+sys),
# which a machine shared with other work disturbs far less than wall time, and the reported seq/s.
import json, resource, statistics, subprocess, sys
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
builds = {"before": sys.argv[2] if len(sys.argv) > 2 else "/tmp/before-bert/bert.dll", "after": sys.argv[3] if len(sys.argv) > 3 else "/tmp/after-bert/bert.dll"}
cases = [("train", "fp32"), ("train", "bf16"), ("infer", "fp32"), ("infer", "bf16")]
rows = {}
for r in range(ROUNDS):
    for sub, prec in cases:
        for name, dll in builds.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(["dotnet", dll, "--threads", "1", "bench", sub, "--model-preset", "seed", "--steps", "8" if sub == "train" else "20",
                                  "--precision", prec, "--json"], capture_output=True, text=True, check=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            res = next(x for x in json.loads(out) if x["name"].startswith(sub))
            rows.setdefault((sub, prec, name), []).append((cpu, res["sequences_per_second"]))
for sub, prec in cases:
    b, a = rows[(sub, prec, "before")], rows[(sub, prec, "after")]
    mb, ma = statistics.median(x[0] for x in b), statistics.median(x[0] for x in a)
    sb, sa = statistics.median(x[1] for x in b), statistics.median(x[1] for x in a)
    print(f"{sub} {prec} 1 thread: process CPU s median before {mb:.2f} after {ma:.2f} ({ma / mb:.3f}x); seq/s median before {sb:.0f} after {sa:.0f}; "
          f"rounds CPU s {[round(x[0], 2) for x in b]} vs {[round(x[0], 2) for x in a]}")

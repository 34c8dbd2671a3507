#!/bin/bash
# Cold starts to the first painted window (offscreen), two source trees taking turns, the order alternating.
# usage: bench/startup_bench.sh BEFORE_TREE AFTER_TREE [ROUNDS]   e.g. a `git archive` of main in /tmp, and .
# Bytecode caches on (a bundle ships bytecode); each tree has its own HEARTH_HOME, warmed by one start first.
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); N=${3:-15}
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
PROBE=$(cd "$(dirname "$0")" && pwd)/startup_probe.py
one() {
  (cd /tmp && env -u PYTHONDONTWRITEBYTECODE HEARTH_HOME="/tmp/startup-bench-home-$(echo "$1" | md5sum | cut -c1-8)" \
     PYTHONPATH="$1" HEARTH_STARTUP_PROBE=1 QT_QPA_PLATFORM=offscreen "$PY" "$PROBE" 2>/dev/null | grep wall)
}
one "$BEFORE" >/dev/null; one "$AFTER" >/dev/null
for i in $(seq "$N"); do
  if [ $((i % 2)) = 1 ]; then order=("$BEFORE" "$AFTER"); else order=("$AFTER" "$BEFORE"); fi
  for tree in "${order[@]}"; do
    if [ "$tree" = "$BEFORE" ]; then echo "before $(one "$tree")"; else echo "after $(one "$tree")"; fi
  done
done | tee /dev/stderr | "$PY" -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, _, wall, _, cpu = line.split()
    runs.setdefault(name, []).append((int(wall), int(cpu)))
for name, values in runs.items():
    walls, cpus = [w for w, _ in values], [c for _, c in values]
    print(f"{name}: wall median {statistics.median(walls):.0f} ms ({min(walls)} to {max(walls)}), "
          f"cpu median {statistics.median(cpus):.0f} ms ({min(cpus)} to {max(cpus)}), {len(values)} runs")
'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

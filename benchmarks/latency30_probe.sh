#!/bin/bash
# The latency30 scenario of axes.py (10,000 sseload subscribers, ssepub at
# 30 events/s for 10 s, server on core 0, load on core 1), with what axes.py
# does not show: the server's CPU (user/system ticks) while the publisher
# runs, how long the publisher took (it falls behind when publishes wait),
# and optionally a kernel profile or the sockets' queues.
#
#   SSELOAD_DIR=/tmp/sseload benchmarks/latency30_probe.sh [TREE] [OUT] [perf|ss]
#
# TREE: the checkout whose src/ runs (default: this one; `git worktree add
# /tmp/base main` gives a before), OUT: a folder for its files. `perf`:
# `perf record -e cpu-clock -g` of the server and sseload for 4 s (read it
# with `perf report -i OUT/perf.data --children --sort sym -g none`);
# `ss`: the server's Send-Q and the subscribers' Recv-Q, three times.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
TREE=${1:-$HERE}; OUT=${2:-$(mktemp -d)}; MODE=${3:-}
TOOLS=${SSELOAD_DIR:?set SSELOAD_DIR to the folder of sseload and ssepub}
PY=${PY:-$HERE/.venv/bin/python}
N=${SUBS:-10000}; EVENTS=${EVENTS:-300}; RATE=${RATE:-30}
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$OUT"
stat2() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo 0 0; }
quantiles() { sort -n | awk -v what="$1" '{a[NR]=$1; s+=$1} END {print what": n="NR, "p50="a[int(NR/2)], "p99="a[int(NR*0.99)], "max="a[NR], "sum="s}'; }
(cd "$TREE" && PYTHONPATH="$TREE/src" exec taskset -c 0 "$PY" -m ssehub serve --port $PORT \
    --anonymous-publish --log-level warning --store memory: >"$OUT/server.log" 2>&1) &
SERVER=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
rm -f "$OUT/ready"
taskset -c 1 "$TOOLS/sseload" -c "$N" -n "$EVENTS" -d 25 -T 120 -F "$OUT/ready" -j "$OUT/load.json" \
    -q "http://127.0.0.1:$PORT/.well-known/mercure?topic=t1" 2>/dev/null &
LOAD=$!
while [ ! -s "$OUT/ready" ]; do sleep 0.2; done
sleep 1
read -r u0 s0 < <(stat2 $SERVER)
t0=$(date +%s.%N)
taskset -c 1 "$TOOLS/ssepub" -n "$EVENTS" -r "$RATE" -k 4 -s 100 -q \
    -b 'topic=t1&data={ts}+{seq}+{pad}' -H 'Content-Type: application/x-www-form-urlencoded' \
    "http://127.0.0.1:$PORT/.well-known/mercure" &
PUB=$!
if [ "$MODE" = perf ]; then
    sleep 2; perf record -e cpu-clock -F 250 -g -p $SERVER,$LOAD -o "$OUT/perf.data" -- sleep 4 >/dev/null 2>&1
elif [ "$MODE" = ss ]; then
    sleep 3
    for _ in 1 2 3; do
        ss -tn state established "( sport = :$PORT )" | awk 'NR>1 {print $2}' | quantiles "server Send-Q bytes"
        ss -tn state established "( dport = :$PORT )" | awk 'NR>1 {print $1}' | quantiles "subscribers' Recv-Q bytes"
        sleep 1
    done
fi
wait $PUB; t1=$(date +%s.%N)
read -r u1 s1 < <(stat2 $SERVER)
wait $LOAD || true
kill -INT $SERVER; wait $SERVER || true
echo "publisher $(echo "$t1 - $t0" | bc) s; server CPU while it ran: user $((u1 - u0)), system $((s1 - s0)) ticks of 1/$(getconf CLK_TCK) s"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print({k: r[k] for k in ('established', 'lat_ms_p50', 'lat_ms_p99', 'per_conn_min')})" "$OUT/load.json"

#!/usr/bin/env bash
# End-to-end fan-out figure: starts a fresh heraldd (embedded Kafka, 2 shards
# unless HERALD_SHARDS says otherwise), runs herald-loadgen RUNS times per
# subscriber count, and prints medians over all broadcasts of all runs.
#   bench/e2e.sh [RUNS=3] [COUNTS="1000 10000"]
# Needs a built tree (tools/build) and python3 for the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
counts=${2:-"1000 10000"}
shards=${HERALD_SHARDS:-2}
out=$(mktemp -d)
trap 'kill $(cat "$out/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$out"' EXIT

for n in $counts; do
  for r in $(seq 1 "$runs"); do
    build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
      --shards "$shards" --log-level warn >/dev/null 2>"$out/heraldd.log" &
    echo $! >"$out/pid"
    build/bin/herald-loadgen --ops 127.0.0.1:18181 --connections "$n" --broadcasts 5 --idle-samples 20 \
      --server-pid "$(cat "$out/pid")" --json >>"$out/n$n.jsonl"
    kill -TERM "$(cat "$out/pid")"; wait "$(cat "$out/pid")" || true
  done
done

python3 - "$out" $counts <<'PY'
import json, statistics, sys
out, counts = sys.argv[1], sys.argv[2:]
print(f"{'subscribers':>11} {'deliveries/s':>13} {'spread p50':>11} {'spread p99':>11} {'last ms p50':>12} "
      f"{'lat p99 ms':>11} {'idle k2s p50':>13} {'idle k2s p99':>13} {'RSS B/conn':>11} {'loadgen CPU':>12}")
for n in counts:
    rows = [json.loads(l) for l in open(f"{out}/n{n}.jsonl")]
    b = [x for r in rows for x in r["broadcasts"]]
    spreads = sorted(x["spread_ms"] for x in b)
    p99 = lambda v: v[min(len(v) - 1, int(0.99 * len(v)))]
    print(f"{n:>11} {statistics.median(x['deliveries_per_s'] for x in b):>13.0f} {statistics.median(spreads):>11.1f} "
          f"{p99(spreads):>11.1f} {statistics.median(x['latency_max_ms'] for x in b):>12.1f} "
          f"{statistics.median(x['latency_p99_ms'] for x in b):>11.1f} "
          f"{statistics.median(r['kafka_to_socket_p50_ms'] for r in rows):>13.2f} "
          f"{statistics.median(r['kafka_to_socket_p99_ms'] for r in rows):>13.2f} "
          f"{statistics.median(r['rss_idle_per_conn_bytes'] for r in rows):>11.0f} "
          f"{statistics.median(r['loadgen_cpu_s'] for r in rows):>10.2f} s")
PY

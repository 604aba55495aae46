#!/usr/bin/env bash
# Side-by-side fan-out: heraldd, nginx+Nchan and a Node.js `ws` server, on
# this machine, with the same load generator, the same subscribers and the
# same message. Publishing is immediate for all three (no deliver_at): for
# heraldd the clock starts at the Kafka produce call, for the peers at the
# HTTP POST to their publish endpoint. Prints medians over RUNS runs of 5
# broadcasts each, and heraldd's ratio against each peer.
#   bench/peers.sh [RUNS=3] [COUNTS="1000 10000 19000"]
# Needs: tools/build, nginx-light + libnginx-mod-nchan, node (npm ci in bench/peers), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
counts=${2:-"1000 10000 19000"}
out=$(mktemp -d)
trap 'for p in "$out"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; rm -rf "$out"; true' EXIT
[ -d bench/peers/node_modules ] || (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
lg=build/bin/herald-loadgen

run_herald() {  # $1 = subscribers
  build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --log-level warn >/dev/null 2>"$out/heraldd.log" & echo $! >"$out/herald.pid"
  $lg --ops 127.0.0.1:18181 --connections "$1" --broadcasts 5 --idle-samples 0 --release-delay-ms 0 \
    --server-pid "$(cat "$out/herald.pid")" --json >>"$out/herald-$1.jsonl"
  kill -TERM "$(cat "$out/herald.pid")"; wait "$(cat "$out/herald.pid")" || true
}

run_nchan() {
  mkdir -p "$out/nginx"
  nginx -p "$out/nginx" -c "$PWD/bench/peers/nginx-nchan.conf" -g 'daemon off;' 2>/dev/null & echo $! >"$out/nginx.pid"
  sleep 0.5
  $lg --port 18280 --path /sub --trigger http-post:127.0.0.1:18280/pub --connections "$1" --broadcasts 5 \
    --idle-samples 0 --server-name nginx --json >>"$out/nchan-$1.jsonl"
  kill -QUIT "$(cat "$out/nginx.pid")"; wait "$(cat "$out/nginx.pid")" || true
}

run_node() {
  node bench/peers/ws_broadcast_server.js 18380 >/dev/null & echo $! >"$out/node.pid"
  sleep 0.5
  $lg --port 18380 --path /sub --trigger http-post:127.0.0.1:18380/pub --connections "$1" --broadcasts 5 \
    --idle-samples 0 --server-name node --json >>"$out/node-$1.jsonl"
  kill "$(cat "$out/node.pid")"; wait "$(cat "$out/node.pid")" || true
}

for n in $counts; do
  for r in $(seq 1 "$runs"); do
    for peer in herald nchan node; do "run_$peer" "$n" || echo "$peer $n run $r failed" >&2; sleep 1; done
  done
done

python3 - "$out" $counts <<'PY'
import json, statistics, sys
out, counts = sys.argv[1], sys.argv[2:]
def load(peer, n):
    try:
        rows = [json.loads(l) for l in open(f"{out}/{peer}-{n}.jsonl")]
    except FileNotFoundError:
        return None
    b = [x for r in rows for x in r["broadcasts"] if x["delivered"] == x["expected"]]
    if not b:
        return None
    sp = sorted(x["spread_ms"] for x in b)
    return dict(rate=statistics.median(x["deliveries_per_s"] for x in b), spread=statistics.median(sp),
                spread99=sp[min(len(sp) - 1, int(0.99 * len(sp)))], last=statistics.median(x["latency_max_ms"] for x in b),
                rss=statistics.median(r["rss_idle_per_conn_bytes"] for r in rows), ok=len(b),
                cpu=statistics.median(r["loadgen_cpu_s"] for r in rows))
print("| subscribers | server | deliveries/s | spread p50 | spread p99 | last receipt | RSS/conn | complete broadcasts | loadgen CPU |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
ratios = []
for n in counts:
    res = {p: load(p, n) for p in ("herald", "nchan", "node")}
    for p, v in res.items():
        if v:
            print(f"| {n} | {p} | {v['rate']:.0f} | {v['spread']:.1f} ms | {v['spread99']:.1f} ms | {v['last']:.1f} ms | "
                  f"{v['rss']:.0f} B | {v['ok']} | {v['cpu']:.2f} s |")
        else:
            print(f"| {n} | {p} | failed | | | | | 0 | |")
    h = res["herald"]
    for p in ("nchan", "node"):
        if h and res[p]:
            ratios.append(f"| {n} | herald / {p} | {h['rate'] / res[p]['rate']:.2f}x | {res[p]['spread'] / max(h['spread'], 0.001):.2f}x |")
print()
print("| subscribers | ratio | deliveries/s (higher is better) | spread (peer / herald, higher is better) |")
print("| ---: | --- | ---: | ---: |")
print("\n".join(ratios))
PY

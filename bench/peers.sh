#!/usr/bin/env bash
# Side-by-side fan-out: heraldd, nginx+Nchan, nats-server (NATS over its
# WebSocket listener) and a Node.js `ws` server, on this machine, with the
# same load generator, the same subscribers and the same message.
#
# Two scenarios per subscriber count:
#   single  one announcement per round (the line-up change)
#   burst   10 announcements published back to back (a ticker flood)
# Publishing is immediate for all (no deliver_at): for heraldd the clock
# starts at the Kafka produce call, for nchan/node at the HTTP POST to their
# publish endpoint, for nats at the PUB on its client port. Optionally two
# heraldd instances on one Kafka, each with N subscribers (scale-out, 2 x N).
#
# Prints medians over RUNS runs of 5 rounds each and heraldd's ratio against
# each peer, and writes the tables with the machine's description into
# bench/RESULTS.md between the "peers:begin/end" markers.
#   bench/peers.sh [RUNS=3] [COUNTS="1000 10000 19000"] [SCALEOUT_COUNT=19000|0]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
counts=${2:-"1000 10000 19000"}
scaleout=${3:-19000}
tools/setup --bench
tools/build heraldd herald-loadgen >/dev/null
[ -d bench/peers/node_modules ] || (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
out=$(mktemp -d)
trap 'for p in "$out"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; rm -rf "$out"; true' EXIT
lg=build/bin/herald-loadgen
common=(--broadcasts 5 --idle-samples 0 --release-delay-ms 0 --json)

wait_ready() {  # $1 = ops host:port
  for _ in $(seq 1 100); do
    [ "$(curl -fsS "http://$1/readyz" 2>/dev/null)" = "ready" ] && return 0
    sleep 0.1
  done
  echo "heraldd at $1 not ready" >&2; return 1
}

run_herald() {  # $1 = subscribers, $2 = burst
  build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --log-level warn >/dev/null 2>"$out/heraldd.log" & echo $! >"$out/herald.pid"
  wait_ready 127.0.0.1:18181
  $lg --ops 127.0.0.1:18181 --connections "$1" --burst "$2" "${common[@]}" \
    --server-pid "$(cat "$out/herald.pid")" >>"$out/herald-$1-$2.jsonl"
  kill -TERM "$(cat "$out/herald.pid")"; wait "$(cat "$out/herald.pid")" || true
}

run_herald2() {  # two instances on the first one's embedded Kafka, $1 subscribers each
  build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --log-level warn >/dev/null 2>"$out/heraldd.log" & echo $! >"$out/herald.pid"
  wait_ready 127.0.0.1:18181
  local brokers
  brokers=$(curl -fsS -H "Authorization: Bearer $(cat herald-data/admin.key)" http://127.0.0.1:18181/v1/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')
  build/bin/heraldd --client-port 18190 --ops-port 18191 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --brokers "$brokers" --fetch-wait-max-ms 2 --instance-id bench-b --data-dir "$out/data-b" \
    --log-level warn >/dev/null 2>"$out/heraldd-b.log" &
  echo $! >"$out/herald-b.pid"
  wait_ready 127.0.0.1:18191
  $lg --ops 127.0.0.1:18181 --port 18180,18190 --brokers "$brokers" --connections "$(( $1 * 2 ))" \
    --burst "$2" "${common[@]}" --server-name heraldd >>"$out/herald2x-$1-$2.jsonl"
  # The second instance first: it needs the first one's Kafka for its final commit.
  kill -TERM "$(cat "$out/herald-b.pid")"; wait "$(cat "$out/herald-b.pid")" || true
  kill -TERM "$(cat "$out/herald.pid")"; wait "$(cat "$out/herald.pid")" || true
}

run_nchan() {
  mkdir -p "$out/nginx"
  nginx -p "$out/nginx" -c "$PWD/bench/peers/nginx-nchan.conf" -g 'daemon off;' 2>/dev/null & echo $! >"$out/nginx.pid"
  sleep 0.5
  $lg --port 18280 --path /sub --trigger http-post:127.0.0.1:18280/pub --connections "$1" --burst "$2" \
    "${common[@]}" --server-name nginx >>"$out/nchan-$1-$2.jsonl"
  kill -QUIT "$(cat "$out/nginx.pid")"; wait "$(cat "$out/nginx.pid")" || true
}

run_nats() {
  (cd "$out" && exec nats-server -c "$OLDPWD/bench/peers/nats.conf") >/dev/null 2>&1 & echo $! >"$out/nats.pid"
  sleep 0.5
  $lg --port 18480 --path / --nats-subject bench.fanout --trigger nats-pub:127.0.0.1:18482/bench.fanout \
    --connections "$1" --burst "$2" "${common[@]}" --server-name nats-server >>"$out/nats-$1-$2.jsonl"
  kill "$(cat "$out/nats.pid")"; wait "$(cat "$out/nats.pid")" || true
}

run_node() {
  node bench/peers/ws_broadcast_server.js 18380 >/dev/null & echo $! >"$out/node.pid"
  sleep 0.5
  $lg --port 18380 --path /sub --trigger http-post:127.0.0.1:18380/pub --connections "$1" --burst "$2" \
    "${common[@]}" --server-name node >>"$out/node-$1-$2.jsonl"
  kill "$(cat "$out/node.pid")"; wait "$(cat "$out/node.pid")" || true
}

for n in $counts; do
  for burst in 1 10; do
    for r in $(seq 1 "$runs"); do
      for peer in herald nchan nats node; do
        "run_$peer" "$n" "$burst" || echo "$peer $n burst $burst run $r failed" >&2
        sleep 1
      done
    done
  done
done
if [ "$scaleout" != 0 ]; then
  for burst in 1 10; do
    for r in $(seq 1 "$runs"); do run_herald2 "$scaleout" "$burst" || echo "2x herald run $r failed" >&2; sleep 1; done
  done
fi

machine="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/{print $2}') GiB,
$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), nginx $(nginx -v 2>&1 | sed 's|.*/||'),
nats-server $(nats-server --version | sed 's/.*v//'), Node $(node --version), commit $(git rev-parse --short HEAD)"
python3 - "$out" "$runs" "$scaleout" "$machine" "$*" $counts <<'PY'
import datetime, json, os, re, statistics, sys
out, runs, scaleout, machine, args, counts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
peers = ("herald", "nchan", "nats", "node")
def load(peer, n, burst):
    try:
        rows = [json.loads(l) for l in open(f"{out}/{peer}-{n}-{burst}.jsonl")]
    except FileNotFoundError:
        return None
    b = [x for r in rows for x in r["broadcasts"] if x["delivered"] == x["expected"]]
    total = sum(len(r["broadcasts"]) for r in rows)
    if not b:
        return None
    sp = sorted(x["spread_ms"] for x in b)
    rss = [r["rss_idle_per_conn_bytes"] for r in rows if r["rss_idle_per_conn_bytes"] > 0]
    return dict(rate=statistics.median(x["deliveries_per_s"] for x in b), spread=statistics.median(sp),
                spread99=sp[min(len(sp) - 1, int(0.99 * len(sp)))],
                last=statistics.median(x["latency_max_ms"] for x in b),
                rss=statistics.median(rss) if rss else None, ok=len(b), total=total,
                cpu=statistics.median(r["loadgen_cpu_s"] for r in rows))
lines = []
p = lines.append
p(f"Measured {datetime.date.today()} with `{' '.join(['bench/peers.sh'] + args.split())}`.")
p(f"Machine: {' '.join(machine.split())}.")
p("")
for burst, title in ((1, "single announcement per round"), (10, "burst of 10 announcements per round")):
    p(f"### {title}")
    p("")
    p("| subscribers | server | deliveries/s | spread p50 | spread p99 | last receipt | RSS/conn | complete | loadgen CPU |")
    p("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = []
    rows = [(n, pr) for n in counts for pr in peers]
    if scaleout != "0":
        rows.append((scaleout, "herald2x"))
    for n, pr in rows:
        v = load(pr, n, burst)
        label = "herald × 2 instances" if pr == "herald2x" else pr
        subs = f"2 × {int(n):,}" if pr == "herald2x" else f"{int(n):,}"
        if v:
            rss = f"{v['rss']:.0f} B" if v["rss"] else "—"
            p(f"| {subs} | {label} | {v['rate']:,.0f} | {v['spread']:.1f} ms | {v['spread99']:.1f} ms | "
              f"{v['last']:.1f} ms | {rss} | {v['ok']}/{v['total']} | {v['cpu']:.2f} s |")
        else:
            p(f"| {subs} | {label} | failed | | | | | 0 | |")
    for n in counts:
        h = load("herald", n, burst)
        for pr in peers[1:]:
            v = load(pr, n, burst)
            if h and v:
                ratios.append(f"| {int(n):,} | {pr} | {h['rate'] / v['rate']:.2f}× | "
                              f"{v['spread'] / max(h['spread'], 0.001):.2f}× |")
    p("")
    p("| subscribers | heraldd ÷ peer | deliveries/s (higher is better) | spread, peer ÷ heraldd (higher is better) |")
    p("| ---: | --- | ---: | ---: |")
    lines.extend(ratios)
    p("")
text = "\n".join(lines)
print(text)
path = "bench/RESULTS.md"
doc = open(path).read()
begin, end = "<!-- peers:begin (written by bench/peers.sh) -->", "<!-- peers:end -->"
if begin in doc and end in doc:
    doc = doc[: doc.index(begin) + len(begin)] + "\n" + text + "\n" + doc[doc.index(end):]
    open(path, "w").write(doc)
    print(f"\n(written into {path})", file=sys.stderr)
PY

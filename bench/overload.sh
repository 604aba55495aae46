#!/usr/bin/env bash
# Sustained overload (not in CI): producers publish faster than Herald can
# deliver, for DURATION seconds per phase, and heraldd's resident memory is
# sampled every 2 s. Bounded queues and paused Kafka partitions must keep it
# flat: the backlog is Kafka's consumer lag, not Herald's memory.
#   phase "live":     CONNECTIONS WebSocket subscribers that read everything,
#                     LIVE_RATE announcements/s to their audience (far more
#                     deliveries per second than two cores can write).
#   phase "outbound": 200 webhook subscribers behind a gateway stand-in that
#                     takes 200 messages/s, OUT_RATE announcements/s to them
#                     (OUT_RATE * 200 deliveries/s demanded). A WebSocket
#                     client on another audience checks that live fan-out
#                     still flows while the outbound side is paused.
#   bench/overload.sh [DURATION=120] [CONNECTIONS=5000] [LIVE_RATE=3000] [OUT_RATE=50]
# OVERLOAD_POLICY (default drop) is heraldd's slow_consumer_policy: with
# "close" the subscribers, who cannot read as fast as the flood, are closed
# with 1008 within seconds and the rest of the phase has nobody to deliver to.
# Writes bench/out/overload-<date>.csv and prints a summary for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-120}
connections=${2:-5000}
live_rate=${3:-3000}
out_rate=${4:-50}
bin=${SOAK_BIN_DIR:-build/bin}
if [[ -z "${SOAK_BIN_DIR:-}" ]]; then
  tools/setup --test >/dev/null
  tools/build heraldd herald herald-loadgen >/dev/null
fi
work=$(mktemp -d)
mkdir -p bench/out
csv="bench/out/overload-$(date -u +%Y%m%dT%H%M%SZ).csv"
trap 'for p in "$work"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"' EXIT
ops=127.0.0.1:18681

tools/gateway-standin --port 18682 --rate 200 --pair-interval-s 0 >/dev/null & echo $! >"$work/standin.pid"
# Kafka lives in a second heraldd (the embedded mock keeps every record in
# memory), so the measured RSS is Herald's own.
"$bin"/heraldd --client-host 127.0.0.1 --client-port 18690 --ops-host 127.0.0.1 --ops-port 18691 \
  --data-dir "$work/kafka-holder" --outbound-group-id overload-kafka-holder --log-level warn >/dev/null 2>&1 &
echo $! >"$work/kafka.pid"
until [ "$(curl -fsS http://127.0.0.1:18691/readyz 2>/dev/null)" = ready ]; do sleep 0.2; done
brokers=$(curl -fsS -H "Authorization: Bearer $(cat "$work/kafka-holder/admin.key")" http://127.0.0.1:18691/v1/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')
"$bin"/heraldd --client-host 127.0.0.1 --client-port 18680 --ops-host 127.0.0.1 --ops-port 18681 \
  --brokers "$brokers" --fetch-wait-max-ms 2 --instance-id overload --data-dir "$work/data" \
  --webhook-rate 200 --webhook-burst 200 --recipient-min-interval-ms 0 \
  --outbound-max-pending 20000 --outbound-max-waiting 500 --slow-consumer-policy "${OVERLOAD_POLICY:-drop}" \
  --outbound-allowed-networks 127.0.0.0/8 --allow-insecure-webhooks on --log-level warn 2>"$work/heraldd.log" >/dev/null &
pid=$!; echo $pid >"$work/herald.pid"
until [ "$(curl -fsS "http://$ops/readyz" 2>/dev/null)" = ready ]; do sleep 0.2; done

# Paced producer: RATE JSON announcements per second to AUDIENCE until killed.
flood() {  # flood AUDIENCE RATE
  python3 - "$1" "$2" <<'PY' | kcat -P -b "$brokers" -t herald.announcements -k "$1" -H content-type=application/json
import sys, time
audience, rate = sys.argv[1], float(sys.argv[2])
i, start = 0, time.monotonic()
while True:
    i += 1
    print('{"id":"%s-%d","audience":"%s","text":"update %d"}' % (audience, i, audience, i), flush=(i % 50 == 0))
    ahead = i / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
PY
}

echo "phase,t_s,rss_kib,live_paused,outbound_paused,live_lag,outbound_lag,queue_depth,outbound_pending,outbound_waiting,live_deliveries,outbound_sent,live_connections,slow_consumer_drops" >"$csv"
sample() {  # sample PHASE T
  local m; m=$(curl -fsS "http://$ops/metrics")
  local g; g() { echo "$m" | awk -v n="$1" -v f="$2" 'index($0, n)==1 && index($0, f) {s+=$NF} END {printf "%.0f", s+0}'; }
  # A waiting broadcast waits on every outbound shard: the gauge per shard, its maximum is the count.
  local gmax; gmax() { echo "$m" | awk -v n="$1" 'index($0, n)==1 && $NF+0 > x {x=$NF+0} END {printf "%.0f", x+0}'; }
  echo "$1,$2,$(awk '/VmRSS/{print $2}' "/proc/$pid/status"),$(g herald_ingest_paused 'consumer="live"'),$(g herald_ingest_paused 'consumer="outbound"'),$(g herald_kafka_consumer_lag 'consumer="live"'),$(g herald_kafka_consumer_lag 'consumer="outbound"'),$(g herald_shard_queue_depth ''),$(g herald_outbound_pending ''),$(gmax herald_outbound_waiting_broadcasts),$(g herald_deliveries_total 'outcome="sent"'),$(g herald_outbound_deliveries_total 'outcome="sent"'),$(g herald_live_connections ''),$(g herald_drops_total 'reason="slow_consumer"')" >>"$csv"
}
run_phase() {  # run_phase NAME
  local start; start=$(date +%s)
  while (( $(date +%s) - start < duration )); do
    sample "$1" $(( $(date +%s) - start ))
    sleep 2
  done
}

# Phase 1: live.
"$bin"/herald-loadgen --ops "$ops" --api-key-file "$work/data/admin.key" --connections "$connections" --audience overload.live \
  --hold-s $((duration + 20)) >"$work/hold.out" 2>&1 & echo $! >"$work/hold.pid"
sleep 5
flood overload.live "$live_rate" & echo $! >"$work/flood1.pid"
run_phase live
kill "$(cat "$work/flood1.pid")" 2>/dev/null || true; pkill -f "kcat -P -b $brokers" || true
sleep 10; sample live-drained $((duration + 10))

# Phase 2: outbound.
python3 - >"$work/subs.ndjson" <<'PY'
for i in range(200):
    print('{"recipient_id":"ov%d","audiences":["overload.out"],"channel":"webhook","address":"http://127.0.0.1:18682/webhook/ov%d","consent":{"given_at":"2026-06-01T10:00:00Z","source":"overload"}}' % (i, i))
PY
curl -fsS -X POST -H "Authorization: Bearer $(cat "$work/data/admin.key")" -H 'content-type: application/x-ndjson' \
  --data-binary "@$work/subs.ndjson" "http://$ops/v1/subscriptions" >/dev/null
flood overload.out "$out_rate" & echo $! >"$work/flood2.pid"
run_phase outbound
# Live still flows while the outbound consumer is paused.
live_check=$(timeout 20 "$bin"/herald listen --ops "http://$ops" --audience overload.check --count 1 --timeout 15s 2>/dev/null &
             sleep 3; "$bin"/herald announce --ops "http://$ops" --audience overload.check --text "still live" >/dev/null; wait) || true
kill "$(cat "$work/flood2.pid")" 2>/dev/null || true; pkill -f "kcat -P -b $brokers" || true

python3 - "$csv" "$duration" "$connections" "$live_rate" "$out_rate" "$live_check" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"overload: {sys.argv[2]} s per phase; live: {sys.argv[3]} subscribers, {sys.argv[4]} announcements/s; "
      f"outbound: 200 webhook subscribers at 200/s, {sys.argv[5]} announcements/s; samples in {sys.argv[1]}")
for phase in ("live", "outbound"):
    r = [x for x in rows if x["phase"] == phase]
    if not r:
        continue
    rss = [int(x["rss_kib"]) / 1024 for x in r]
    q = max(1, len(r) // 4)
    paused = sum(int(x[phase + "_paused"]) for x in r) / len(r)
    lag = max(int(x[phase + "_lag"]) for x in r)
    t = float(r[-1]["t_s"]) - float(r[0]["t_s"]) or 1
    key = "live_deliveries" if phase == "live" else "outbound_sent"
    rate = (float(r[-1][key]) - float(r[0][key])) / t
    print(f"{phase}: RSS MiB first quarter median {statistics.median(rss[:q]):.1f}, last quarter median "
          f"{statistics.median(rss[-q:]):.1f}, max {max(rss):.1f}; paused {100 * paused:.0f}% of samples; "
          f"Kafka lag max {lag}; {rate:.0f} deliveries/s; live connections at the end {r[-1]['live_connections']}, "
          f"slow-consumer drops {r[-1]['slow_consumer_drops']}")
d = [x for x in rows if x["phase"] == "live-drained"]
if d:
    print(f"live, 10 s after the flood stopped: lag {d[0]['live_lag']}, paused {d[0]['live_paused']}")
print("live fan-out during the outbound overload:", "delivered" if "still live" in sys.argv[6] else "NOT delivered")
PY

#!/usr/bin/env bash
# Soak (not in CI): heraldd under steady tickers, a large broadcast with
# connection churn every PERIOD seconds, and outbound webhook deliveries, for
# DURATION seconds; samples heraldd's RSS, open descriptors and the load
# generator's latency over time. Flat memory and descriptors = no leaks.
#   bench/soak.sh [DURATION=3600] [PERIOD=30] [CONNECTIONS=5000]
# Writes bench/out/soak-<date>.csv and prints a summary for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-3600}
period=${2:-30}
connections=${3:-5000}
bin=${SOAK_BIN_DIR:-build/bin}   # a copy of build/bin lets a long soak run while build/ changes
if [[ -z "${SOAK_BIN_DIR:-}" ]]; then
  tools/setup --bench >/dev/null
  tools/build heraldd herald herald-loadgen >/dev/null
fi
work=$(mktemp -d)
mkdir -p bench/out
csv="bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ).csv"
trap 'for p in "$work"/herald.pid "$work"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"' EXIT
ops=127.0.0.1:18781

tools/gateway-standin --port 18782 --rate 2000 --pair-interval-s 0 >/dev/null & echo $! >"$work/standin.pid"
# Kafka lives in a second heraldd (its embedded mock cluster keeps every record
# in memory), so the measured heraldd's RSS is Herald's own. Its own outbound
# consumer is in another group, so the measured heraldd does all outbound work.
"$bin"/heraldd --client-host 127.0.0.1 --client-port 18790 --ops-host 127.0.0.1 --ops-port 18791 \
  --data-dir "$work/kafka-holder" --outbound-group-id soak-kafka-holder --log-level warn 2>/dev/null >/dev/null &
echo $! >"$work/kafka.pid"
until [ "$(curl -fsS "http://127.0.0.1:18791/readyz" 2>/dev/null)" = ready ]; do sleep 0.2; done
brokers=$(curl -fsS -H "Authorization: Bearer $(cat "$work/kafka-holder/admin.key")" "http://127.0.0.1:18791/v1/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')
"$bin"/heraldd --client-host 127.0.0.1 --client-port 18780 --ops-host 127.0.0.1 --ops-port 18781 \
  --brokers "$brokers" --fetch-wait-max-ms 2 --instance-id soak \
  --data-dir "$work/data" --recipient-min-interval-ms 0 --webhook-rate 1000 --webhook-burst 1000 \
  --outbound-allowed-networks 127.0.0.0/8 --allow-insecure-webhooks on --log-level warn 2>"$work/heraldd.log" >/dev/null &
pid=$!; echo $pid >"$work/herald.pid"
until [ "$(curl -fsS "http://$ops/readyz" 2>/dev/null)" = ready ]; do sleep 0.2; done

# 20 outbound webhook subscribers on the ticker audience.
python3 - >"$work/subs.ndjson" <<'PY'
for i in range(20):
    print('{"recipient_id":"soak%d","audiences":["soak.ticker"],"channel":"webhook","address":"http://127.0.0.1:18782/webhook/soak%d","consent":{"given_at":"2026-06-01T10:00:00Z","source":"soak"}}' % (i, i))
PY
curl -fsS -X POST -H "Authorization: Bearer $(cat "$work/data/admin.key")" -H 'content-type: application/x-ndjson' \
  --data-binary "@$work/subs.ndjson" "http://$ops/v1/subscriptions" >/dev/null

# Steady tickers: 10 per second to soak.ticker through kcat.
( i=0; while :; do
    printf '{"id":"tick-%d","audience":"soak.ticker","text":"score update %d","expires_at":"2099-01-01T00:00:00Z"}\n' "$i" "$i"
    i=$((i+1)); sleep 0.1
  done | kcat -P -b "$brokers" -t herald.announcements -k soak.ticker -H content-type=application/json ) &
echo $! >"$work/ticker.pid"

echo "t_s,rss_kib,fds,live_connections,broadcast_p99_ms,broadcast_spread_ms,outbound_sent" >"$csv"
start=$(date +%s)
next_burst=$start
while :; do
  now=$(date +%s)
  (( now - start >= duration )) && break
  p99=""; spread=""
  if (( now >= next_burst )); then
    # A large broadcast: connect, broadcast once, disconnect (churn).
    out=$("$bin"/herald-loadgen --ops "$ops" --connections "$connections" --broadcasts 1 --idle-samples 0 \
            --audience soak.big --json 2>/dev/null || true)
    p99=$(echo "$out" | python3 -c 'import json,sys
try:
    b=json.load(sys.stdin)["broadcasts"][0]; print(round(b["latency_p99_ms"],1), round(b["spread_ms"],1))
except Exception: print("")' )
    spread=${p99#* }; p99=${p99% *}
    next_burst=$(( now + period ))
  fi
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  m=$(curl -fsS "http://$ops/metrics")
  live=$(echo "$m" | awk '/^herald_live_connections/{s+=$2} END {print s+0}')
  sent=$(echo "$m" | awk '/^herald_outbound_deliveries_total\{.*outcome="sent"/{s+=$2} END {print s+0}')
  echo "$(( now - start )),$rss,$fds,$live,$p99,$spread,$sent" >>"$csv"
  sleep 5
done
python3 - "$csv" "$duration" "$period" "$connections" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rss = [int(r["rss_kib"]) for r in rows]
fds = [int(r["fds"]) for r in rows]
p99 = [float(r["broadcast_p99_ms"]) for r in rows if r["broadcast_p99_ms"]]
q = len(rss) // 4 or 1
print(f"soak {sys.argv[2]} s, large broadcast to {sys.argv[4]} churned connections every {sys.argv[3]} s, "
      f"10 tickers/s to 20 webhook subscribers; {len(rows)} samples in {sys.argv[1]}")
print(f"RSS KiB: first quarter median {statistics.median(rss[:q]):.0f}, last quarter median {statistics.median(rss[-q:]):.0f}, max {max(rss)}")
print(f"open fds: first {fds[0]}, last {fds[-1]}, max {max(fds)}")
if p99:
    print(f"large broadcast p99 ms: first {p99[0]}, last {p99[-1]}, median {statistics.median(p99)}, max {max(p99)}")
print(f"outbound webhooks sent: {rows[-1]['outbound_sent']}")
PY

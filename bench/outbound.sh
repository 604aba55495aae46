#!/usr/bin/env bash
# Outbound delivery figures: webhook deliveries per second to a local sink
# with no limit, the rate limiter's accuracy against a configured rate, and
# start-up time and memory of the registry with many subscribers.
#
#   bench/outbound.sh [RUNS=3] [RECIPIENTS=20000] [RATE=1000|0] [REGISTRY=1000000|0]
#
# RATE=0 skips the accuracy part, REGISTRY=0 the registry part.
# OUTBOUND_CHANNEL=sms measures the throughput part with SMS subscribers sent
# through the sink as the SMS gateway (each delivery marked started in
# outbound.sqlite3 before it is sent, docs/OUTBOUND.md "At most once");
# HERALDD_EXTRA="--resend-unknown-channels sms" turns that marking off.
# HERALD_BIN_DIR=dir runs the heraldd and herald in dir instead of building
# build/bin (an A/B against an older build kept aside).
#
# The sink is nginx answering 200 on keep-alive (bench/outbound/nginx-sink.conf).
# 1. throughput: heraldd --webhook-rate 1000000, RECIPIENTS webhook subscribers
#    on one endpoint, one announcement; deliveries/s = RECIPIENTS / (done - produced),
#    from GET /v1/broadcasts/{id}.
# 2. accuracy: --webhook-rate RATE --webhook-burst RATE; arrivals per second at
#    the sink over the 10 s after the first second, compared with RATE.
# 3. registry: REGISTRY subscribers imported through the ops API, then heraldd
#    restarted on the same data dir: load time (from its log) and RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
recipients=${2:-20000}
rate=${3:-1000}
registry_n=${4:-1000000}
tools/setup --bench >/dev/null
bin=${HERALD_BIN_DIR:-build/bin}
[ -n "${HERALD_BIN_DIR:-}" ] || tools/build heraldd herald >/dev/null
heraldd=$bin/heraldd
channel=${OUTBOUND_CHANNEL:-webhook}
read -r -a extra <<<"${HERALDD_EXTRA:-}"
work=$(mktemp -d)
trap 'for p in "$work"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"' EXIT
ops=127.0.0.1:18681

start_sink() {
  mkdir -p "$work/nginx"
  rm -f "$work/nginx/arrivals.log"
  nginx -p "$work/nginx" -c "$PWD/bench/outbound/nginx-sink.conf" -g 'daemon off;' 2>/dev/null &
  echo $! >"$work/nginx.pid"
  sleep 0.5
}
stop_sink() { kill -QUIT "$(cat "$work/nginx.pid")"; wait "$(cat "$work/nginx.pid")" 2>/dev/null || true; }

start_herald() {  # extra heraldd flags
  "$heraldd" --client-host 127.0.0.1 --client-port 0 --ops-host 127.0.0.1 --ops-port 18681 \
    --data-dir "$work/data" --outbound-allowed-networks 127.0.0.0/8 --allow-insecure-webhooks on --log-level info "${extra[@]}" "$@" >/dev/null 2>"$work/heraldd.log" &
  echo $! >"$work/herald.pid"
  for _ in $(seq 1 300); do [ "$(curl -fsS "http://$ops/readyz" 2>/dev/null)" = ready ] && return 0; sleep 0.1; done
  echo "heraldd not ready" >&2; cat "$work/heraldd.log" >&2; return 1
}
stop_herald() { kill -TERM "$(cat "$work/herald.pid")"; wait "$(cat "$work/herald.pid")" 2>/dev/null || true; }

subscribe() {  # $1 = count, $2 = audience, $3 = address prefix (sms: the subscribers get phone numbers)
  python3 - "$1" "$2" "$3" "$work/subs" "${4:-webhook}" <<'PY'
import sys
n, aud, prefix, out, channel = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
batch = 10000
for start in range(0, n, batch):
    with open(f"{out}.{start // batch:05d}", "w") as f:
        for i in range(start, min(n, start + batch)):
            address = "+4915%09d" % i if channel == "sms" else "%s%d" % (prefix, i)
            f.write('{"recipient_id":"b%d","audiences":["%s"],"channel":"%s","address":"%s",'
                    '"consent":{"given_at":"2026-06-01T10:00:00Z","source":"bench"}}\n' % (i, aud, channel, address))
PY
  for f in "$work"/subs.*; do
    curl -fsS -X POST -H "Authorization: Bearer $(cat "$work/data/admin.key")" -H 'content-type: application/x-ndjson' \
      --data-binary "@$f" "http://$ops/v1/subscriptions" >/dev/null
    rm -f "$f"
  done
}

announce_and_wait() {  # $1 = id; prints seconds from produce to done
  local t0 t1
  t0=$(date +%s.%N)
  # --data-dir: the CLI reads heraldd's generated admin.key there (the ops API needs a key).
  "$bin/herald" announce --ops "http://$ops" --data-dir "$work/data" --audience bench.out --id "$1" \
    --text "Gates open at 10" >/dev/null || { echo "herald announce failed" >&2; exit 1; }
  until curl -fsS -H "Authorization: Bearer $(cat "$work/data/admin.key")" "http://$ops/v1/broadcasts/$1" 2>/dev/null |
    grep -q '"state":"done"'; do sleep 0.02; done
  t1=$(date +%s.%N)
  curl -fsS -H "Authorization: Bearer $(cat "$work/data/admin.key")" "http://$ops/v1/broadcasts/$1" >"$work/status-$1.json"
  python3 -c "print($t1 - $t0)"
}

echo "== throughput: $recipients $channel recipients, no limit" >&2
tput=()
lag=()
for r in $(seq 1 "$runs"); do
  rm -rf "$work/data"; start_sink
  start_herald --webhook-rate 1000000 --webhook-burst 1000000 --sms-rate 1000000 --sms-burst 1000000 \
    --sms-gateway-url http://127.0.0.1:18580/webhook/sms --outbound-connections 8 --recipient-min-interval-ms 0
  subscribe "$recipients" bench.out "http://127.0.0.1:18580/webhook/" "$channel"
  s=$(announce_and_wait "t$r")
  sent=$(python3 -c "import json;print(json.load(open('$work/status-t$r.json'))['sent'])")
  tput+=("$(python3 -c "print(round($sent / $s))")")
  # Receipts keep up: how long after `done` Kafka has acknowledged every one.
  t_done=$(date +%s.%N)
  until [ "$(curl -fsS "http://$ops/metrics" | awk '/^herald_receipt_records_total\{result="written"\}/ {print int($NF)}')" -ge "$sent" ]; do sleep 0.02; done
  lag+=("$(python3 -c "print(round(($(date +%s.%N) - $t_done) * 1000))")")
  # Started marks (SMS/WhatsApp): transactions and deliveries per transaction.
  marks=$(curl -fsS "http://$ops/metrics" | awk '/^herald_outbound_start_marks_total / {m=$NF} /^herald_outbound_start_batches_total / {b=$NF} END {if (b > 0) printf "%d marks in %d transactions (%.1f per transaction)", m, b, m / b; else print "no started marks"}')
  echo "run $r: $sent sent in $s s, receipts all acknowledged ${lag[-1]} ms after done; $marks" >&2
  stop_herald; stop_sink
done

acc=()
n_acc=$(( rate * 13 ))
runs_acc=$runs
if [ "$rate" = 0 ]; then runs_acc=0; else echo "== accuracy: --webhook-rate $rate" >&2; fi
for r in $(seq 1 "$runs_acc"); do
  rm -rf "$work/data"; start_sink
  start_herald --webhook-rate "$rate" --webhook-burst "$rate" --recipient-min-interval-ms 0
  subscribe "$n_acc" bench.out "http://127.0.0.1:18580/webhook/"
  announce_and_wait "a$r" >/dev/null
  stop_herald; stop_sink
  acc+=("$(python3 - "$work/nginx/arrivals.log" "$rate" <<'PY'
import sys
t = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
rate = float(sys.argv[2])
start = t[0] + 1.0                     # after the initial burst
n = sum(1 for x in t if start <= x < start + 10.0)
per_s = [sum(1 for x in t if start + k <= x < start + k + 1) for k in range(10)]
print(f"{n / 10.0:.1f} {100.0 * (n / 10.0 - rate) / rate:+.2f} {min(per_s)} {max(per_s)}")
PY
)")
  echo "run $r: ${acc[-1]} (achieved/s, error %, min and max 1-s count)" >&2
done

reg=""
if [ "$registry_n" != 0 ]; then
  echo "== registry: $registry_n subscribers" >&2
  rm -rf "$work/data"
  start_herald
  t0=$(date +%s.%N)
  subscribe "$registry_n" bench.reg "https://hooks.example.com/herald/"
  t1=$(date +%s.%N)
  stop_herald
  start_herald
  load_ms=$(sed -n 's/.*subscriber(s) loaded in \([0-9]*\) ms.*/\1/p' "$work/heraldd.log")
  rss_kib=$(awk '/VmRSS/{print $2}' "/proc/$(cat "$work/herald.pid")/status")
  db_mib=$(du -m "$work/data/registry.sqlite3" | cut -f1)
  stop_herald
  rm -rf "$work/data"
  start_herald
  base_kib=$(awk '/VmRSS/{print $2}' "/proc/$(cat "$work/herald.pid")/status")
  stop_herald
  reg=$(python3 -c "print(f'import {($t1-$t0):.0f} s ({$registry_n/($t1-$t0):.0f}/s) | load {$load_ms} ms | RSS {$rss_kib/1024:.0f} MiB (empty: {$base_kib/1024:.0f} MiB, {($rss_kib-$base_kib)*1024/$registry_n:.0f} B/subscriber) | store {$db_mib} MiB')")
fi

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "outbound, $(date -u +%F), commit $(git rev-parse --short HEAD), heraldd $heraldd ${HERALDD_EXTRA:-}, runs=$runs"
echo "$channel deliveries/s to a local sink, no limit, $recipients recipients: median $(median "${tput[@]}") (runs: ${tput[*]})"
echo "receipts acknowledged by Kafka after done, ms: median $(median "${lag[@]}") (runs: ${lag[*]})"
if [ "$rate" != 0 ]; then echo "rate limiter at $rate/s over 10 s: $(printf '%s; ' "${acc[@]}")"; fi
if [ -n "$reg" ]; then echo "registry with $registry_n subscribers: $reg"; fi

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
#
# TLS mode (`bench/peers.sh --tls [RUNS=3] [COUNTS="1000 10000"]`, or
# PEERS_TLS=1): subscribers speak wss://. A throwaway CA and a server
# certificate for 127.0.0.1 (EC P-256) are made with openssl into the run's
# temporary directory and removed with it (never committed); heraldd
# (--tls-cert-file) and nginx+Nchan (an `ssl` listener,
# bench/peers/nginx-nchan-tls.conf) serve the same certificate, the load
# generator verifies it (--tls-ca-file). Measured in the same run, turn about:
# heraldd over TLS, nginx+Nchan over TLS, heraldd plaintext. Publishing stays
# plaintext for both (Kafka, the HTTP POST). Writes between the
# "peers-tls:begin/end" markers of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
tls=${PEERS_TLS:-0}
if [ "${1:-}" = "--tls" ]; then tls=1; shift; fi
shown="bench/peers.sh $*"  # the command, as RESULTS.md shows it
[ "$tls" = 1 ] && shown="bench/peers.sh --tls $*"
runs=${1:-3}
if [ "$tls" = 1 ]; then
  counts=${2:-"1000 10000"}
  scaleout=0
  peers=(herald_tls nchan_tls herald)
else
  counts=${2:-"1000 10000 19000"}
  scaleout=${3:-19000}
  peers=(herald nchan nats node)
fi
tools/setup --bench
tools/build heraldd herald-loadgen >/dev/null
if [ "$tls" = 0 ]; then
  [ -d bench/peers/node_modules ] || (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
out=$(mktemp -d)
trap 'for p in "$out"/*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; rm -rf "$out"; true' EXIT
lg=build/bin/herald-loadgen
common=(--broadcasts 5 --idle-samples 0 --release-delay-ms 0 --json)
curl_tls=()  # curl's trust in TLS mode: --cacert CA

make_certs() {  # a throwaway CA and a server certificate for 127.0.0.1 / localhost
  local d="$out/tls"
  mkdir -p "$d"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 \
    -subj "/CN=bench peers.sh throwaway CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  chmod 600 "$d"/*.key
  openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null
}

wait_ready() {  # $1 = ops URL (http:// or https://)
  for _ in $(seq 1 100); do
    [ "$(curl -fsS "${curl_tls[@]}" "$1/readyz" 2>/dev/null)" = "ready" ] && return 0
    sleep 0.1
  done
  echo "heraldd at $1 not ready" >&2; return 1
}

run_herald() {  # $1 = subscribers, $2 = burst, $3 = label (herald, herald_tls)
  local label=${3:-herald} serve=() trust=() scheme=http
  if [ "$label" = herald_tls ]; then
    serve=(--tls-cert-file "$out/tls/server.pem" --tls-key-file "$out/tls/server.key")
    trust=(--tls-ca-file "$out/tls/ca.pem")
    scheme=https
  fi
  build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --log-level warn "${serve[@]}" >/dev/null 2>"$out/heraldd.log" & echo $! >"$out/herald.pid"
  wait_ready "$scheme://127.0.0.1:18181"
  if [ "$label" = herald_tls ] && [ ! -s "$out/info-tls.json" ]; then  # what the host offers for TLS
    curl -fsS "${curl_tls[@]}" -H "Authorization: Bearer $(cat herald-data/admin.key)" \
      https://127.0.0.1:18181/v1/info >"$out/info-tls.json" || true
  fi
  $lg --ops 127.0.0.1:18181 --connections "$1" --burst "$2" "${common[@]}" "${trust[@]}" \
    --server-pid "$(cat "$out/herald.pid")" >>"$out/$label-$1-$2.jsonl"
  kill -TERM "$(cat "$out/herald.pid")"; wait "$(cat "$out/herald.pid")" || true
}

run_herald_tls() { run_herald "$1" "$2" herald_tls; }

run_herald2() {  # two instances on the first one's embedded Kafka, $1 subscribers each
  build/bin/heraldd --client-port 18180 --ops-port 18181 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --log-level warn >/dev/null 2>"$out/heraldd.log" & echo $! >"$out/herald.pid"
  wait_ready http://127.0.0.1:18181
  local brokers
  brokers=$(curl -fsS -H "Authorization: Bearer $(cat herald-data/admin.key)" http://127.0.0.1:18181/v1/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')
  build/bin/heraldd --client-port 18190 --ops-port 18191 --client-host 127.0.0.1 --ops-host 127.0.0.1 \
    --shards 2 --brokers "$brokers" --fetch-wait-max-ms 2 --instance-id bench-b --data-dir "$out/data-b" \
    --log-level warn >/dev/null 2>"$out/heraldd-b.log" &
  echo $! >"$out/herald-b.pid"
  wait_ready http://127.0.0.1:18191
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

run_nchan_tls() {
  mkdir -p "$out/nginx"
  sed "s|@TLS_DIR@|$out/tls|g" bench/peers/nginx-nchan-tls.conf >"$out/nginx/nginx-nchan-tls.conf"
  nginx -p "$out/nginx" -c "$out/nginx/nginx-nchan-tls.conf" -g 'daemon off;' 2>/dev/null & echo $! >"$out/nginx.pid"
  sleep 0.5
  $lg --port 18281 --path /sub --tls-ca-file "$out/tls/ca.pem" --trigger http-post:127.0.0.1:18280/pub \
    --connections "$1" --burst "$2" "${common[@]}" --server-name nginx >>"$out/nchan_tls-$1-$2.jsonl"
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

if [ "$tls" = 1 ]; then
  make_certs
  curl_tls=(--cacert "$out/tls/ca.pem")
fi
# How shared the machine was: 1-minute load and other builds' compilers, every 5 s.
(while :; do echo "$(cut -d' ' -f1 /proc/loadavg) $(pgrep -c 'cc1plus|clang' || true)"; sleep 5; done) \
  >"$out/load.txt" & echo $! >"$out/sampler.pid"
for n in $counts; do
  for burst in 1 10; do
    for r in $(seq 1 "$runs"); do
      for peer in "${peers[@]}"; do
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

kill "$(cat "$out/sampler.pid")" 2>/dev/null || true
machine="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/{print $2}') GiB,
$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), nginx $(nginx -v 2>&1 | sed 's|.*/||'),
nats-server $(nats-server --version | sed 's/.*v//'), Node $(node --version), $(openssl version | cut -d' ' -f1-2),
commit $(git rev-parse --short HEAD)"
python3 - "$out" "$runs" "$scaleout" "$machine" "$shown" "$tls" "${peers[*]}" $counts <<'PY'
import datetime, json, os, re, statistics, sys
out, runs, scaleout, machine, shown, tls, peers, counts = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                                                           sys.argv[5], sys.argv[6] == "1", sys.argv[7].split(),
                                                           sys.argv[8:])
labels = {"herald_tls": "heraldd, TLS", "nchan_tls": "nginx+Nchan, TLS", "herald": "heraldd" + (", plaintext" if tls else "")}
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
p(f"Measured {datetime.date.today()} with `{' '.join(shown.split())}`.")
p(f"Machine: {' '.join(machine.split())}.")
if tls:
    try:
        info = json.load(open(f"{out}/info-tls.json"))["tls"]
        how = ("kernel TLS (kTLS): after the handshake plain send(2) encrypts" if info.get("kernel_offload")
               else "SSL_write per connection")
        p(f"TLS on this host: kernel TLS {'available' if info.get('kernel_tls_available') else 'not available'} "
          f"({info.get('kernel_tls_detail', '?')}); heraldd encrypts with {how}.")
    except (FileNotFoundError, KeyError, ValueError):
        p("TLS on this host: heraldd's /v1/info could not be read.")
    seen = []
    for pr in ("herald_tls", "nchan_tls"):
        for n in counts:
            try:
                t = next((json.loads(l).get("tls", "") for l in open(f"{out}/{pr}-{n}-1.jsonl")), "")
            except FileNotFoundError:
                t = ""
            if t:
                seen.append(f"{labels[pr]}: {t}")
                break
    if seen:
        p(f"Negotiated: {'; '.join(seen)}.")
try:
    samples = [l.split() for l in open(f"{out}/load.txt") if len(l.split()) == 2]
except FileNotFoundError:
    samples = []
if samples:
    loads = sorted(float(a) for a, _ in samples)
    busy = sum(1 for _, c in samples if int(c) > 0)
    p(f"Sharing: 1-minute load average median {statistics.median(loads):.2f}, max {loads[-1]:.2f} over "
      f"{len(samples)} samples (5 s apart); another build's compiler was running in {busy} of them.")
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
        label = "herald × 2 instances" if pr == "herald2x" else (labels.get(pr, pr) if tls else pr)
        subs = f"2 × {int(n):,}" if pr == "herald2x" else f"{int(n):,}"
        if v:
            rss = f"{v['rss']:.0f} B" if v["rss"] else "—"
            p(f"| {subs} | {label} | {v['rate']:,.0f} | {v['spread']:.1f} ms | {v['spread99']:.1f} ms | "
              f"{v['last']:.1f} ms | {rss} | {v['ok']}/{v['total']} | {v['cpu']:.2f} s |")
        else:
            p(f"| {subs} | {label} | failed | | | | | 0 | |")
    for n in counts:
        h = load(peers[0], n, burst)
        for pr in peers[1:]:
            v = load(pr, n, burst)
            if h and v:
                ratios.append(f"| {int(n):,} | {labels.get(pr, pr) if tls else pr} | {h['rate'] / v['rate']:.2f}× | "
                              f"{v['spread'] / max(h['spread'], 0.001):.2f}× |")
    p("")
    me = "heraldd over TLS" if tls else "heraldd"
    p(f"| subscribers | {me} ÷ other | deliveries/s (higher is better) | spread, other ÷ {me} (higher is better) |")
    p("| ---: | --- | ---: | ---: |")
    lines.extend(ratios)
    p("")
text = "\n".join(lines)
print(text)
path = "bench/RESULTS.md"
doc = open(path).read()
begin, end = (("<!-- peers-tls:begin (written by bench/peers.sh --tls) -->", "<!-- peers-tls:end -->") if tls
              else ("<!-- peers:begin (written by bench/peers.sh) -->", "<!-- peers:end -->"))
if begin in doc and end in doc:
    doc = doc[: doc.index(begin) + len(begin)] + "\n" + text + "\n" + doc[doc.index(end):]
    open(path, "w").write(doc)
    print(f"\n(written into {path})", file=sys.stderr)
PY

#!/usr/bin/env bash
# What a token costs at the handshake: WebSocket connect + upgrade + close
# storms (herald-loadgen --churn) against heraldd with every audience public
# (no JWT key), then with HS256, RS256 and ES256 tokens the handshake must
# verify — the same token again and again (a client reconnecting) and a new
# one per connection (new clients). Prints, per mode, the median over RUNS
# runs of upgrades per second
# and heraldd's own CPU per 1,000 upgrades (the load generator, on the same
# two cores, is usually the limit of the rate; heraldd's CPU shows the cost).
#   bench/handshake.sh [RUNS=3] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-10}
tools/build heraldd herald herald-loadgen >/dev/null
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

head -c 48 /dev/urandom | base64 >"$work/hs256.secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.key" 2>/dev/null
openssl pkey -in "$work/rsa.key" -pubout -out "$work/rsa.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.key" 2>/dev/null
openssl pkey -in "$work/ec.key" -pubout -out "$work/ec.pub"
# Per algorithm: one token (every connection the same client reconnecting:
# verified once, then remembered) and 30,000 distinct tokens, more than the
# verifier remembers (16,384): each connection a new client, verified in full.
/usr/bin/python3 - "$work" <<'PY'
import sys, time, jwt
from cryptography.hazmat.primitives import serialization
work = sys.argv[1]
keys = {
    "hs256": open(f"{work}/hs256.secret").read().rstrip("\n"),
    "rs256": serialization.load_pem_private_key(open(f"{work}/rsa.key", "rb").read(), None),
    "es256": serialization.load_pem_private_key(open(f"{work}/ec.key", "rb").read(), None),
}
exp = int(time.time()) + 3600
for alg, key in keys.items():
    tokens = [jwt.encode({"exp": exp, "sub": f"fan-{i}", "audiences": ["bench.*"]}, key, algorithm=alg.upper())
              for i in range(30000)]
    open(f"{work}/{alg}.jwt", "w").write(tokens[0] + "\n")
    open(f"{work}/{alg}-distinct.jwt", "w").write("\n".join(tokens) + "\n")
PY

cpu_s() {  # heraldd's user+system CPU seconds
  awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"
}

run_mode() {  # $1 = name, $2 = token file or "", rest = heraldd flags
  local name=$1 token=$2; shift 2
  for r in $(seq 1 "$runs"); do
    rm -rf "$work/data"
    build/bin/heraldd --client-host 127.0.0.1 --client-port 18980 --ops-host 127.0.0.1 --ops-port 18981 \
      --shards 2 --data-dir "$work/data" --log-level warn "$@" >/dev/null 2>"$work/heraldd.log" &
    echo $! >"$work/pid"
    until [ "$(curl -fsS http://127.0.0.1:18981/readyz 2>/dev/null)" = ready ]; do sleep 0.2; done
    local before; before=$(cpu_s "$(cat "$work/pid")")
    build/bin/herald-loadgen --ops 127.0.0.1:18981 --api-key-file "$work/data/admin.key" \
      --audience bench.storm --churn "$seconds" ${token:+--token-file "$token"} --json >"$work/run.json"
    local after; after=$(cpu_s "$(cat "$work/pid")")
    python3 - "$work/run.json" "$before" "$after" "$name" >>"$work/results.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
up = r["upgraded"]
print(f'{sys.argv[4]}\t{r["upgrades_per_s"]:.0f}\t{(float(sys.argv[3]) - float(sys.argv[2])) / up * 1000 if up else 0:.3f}\t{r["refused"]}\t{r["errors"]}')
PY
    kill -TERM "$(cat "$work/pid")"; wait "$(cat "$work/pid")" || true
  done
}

run_mode "no token (all public)" ""
run_mode "HS256, same token" "$work/hs256.jwt" --jwt-hs256-secret-file "$work/hs256.secret"
run_mode "HS256, new tokens" "$work/hs256-distinct.jwt" --jwt-hs256-secret-file "$work/hs256.secret"
run_mode "RS256, same token" "$work/rs256.jwt" --jwt-public-key-file "$work/rsa.pub"
run_mode "RS256, new tokens" "$work/rs256-distinct.jwt" --jwt-public-key-file "$work/rsa.pub"
run_mode "ES256, same token" "$work/es256.jwt" --jwt-public-key-file "$work/ec.pub"
run_mode "ES256, new tokens" "$work/es256-distinct.jwt" --jwt-public-key-file "$work/ec.pub"

python3 - "$work/results.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
modes = list(dict.fromkeys(r[0] for r in rows))
base = None
print(f"{'mode':<22} {'upgrades/s (median)':>20} {'heraldd CPU ms / 1000 upgrades':>31} {'refused':>8} {'errors':>7}")
for m in modes:
    rs = [r for r in rows if r[0] == m]
    ups = statistics.median(float(r[1]) for r in rs)
    cpu = statistics.median(float(r[2]) for r in rs)
    base = base or (ups, cpu)
    print(f"{m:<22} {ups:>14.0f} ({ups / base[0]:.2f}x) {cpu * 1000:>22.1f} ({cpu / base[1]:.2f}x) "
          f"{sum(int(r[3]) for r in rs):>8} {sum(int(r[4]) for r in rs):>7}")
PY

#!/usr/bin/env bash
# ssogate side by side with its peers, in one run, as ratios; writes BENCHMARKS.md.
#
#   bench/run.sh                 # everything (about 10 minutes), then BENCHMARKS.md
#   bench/run.sh pinned          # only some phases: check pinned unpinned verify sessions reload profile
#   DURATION=5 bench/run.sh      # seconds per load case (default 10, after a 2 s warm-up)
#   SSOGATE_BIN=path bench/run.sh   # measure an existing binary (bench-tokens is still built)
#   KEEP=1 bench/run.sh          # keep the scratch directory (configs, logs, raw wrk output)
#   OUT=file bench/run.sh        # write the report elsewhere than BENCHMARKS.md
#
# Targets, all in front of the same upstream (nginx answering 1 KiB):
#   nginx proxy_pass (the baseline), HAProxy passthrough, HAProxy jwt_verify
#   HS256 and RS256 (a claim copied into a header), and ssogate with a session
#   cookie, a cached Bearer, a public path and an RS256 token that is new on
#   every request (token churn).
# Phases:
#   check     every authenticating target refuses a bad signature, an expired
#             token and no token (the run stops with exit 1 if one does not)
#   pinned    proxy on CPU 0 with one worker, wrk and the upstream on CPU 1
#   unpinned  two proxy workers, wrk with two threads, no pinning
#   verify    cold RS256 verification per core: ssogate's (criterion) against
#             `openssl speed -verify rsa2048`
#   sessions  one million distinct session cookies: RSS and the cache bound
#   reload    a config change every second during 30 s of load: failed requests
#   profile   perf record of the pinned cookie case: where a request's time goes
# Everything listens on 127.0.0.1; only what this script started is stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
KEEP=${KEEP:-0}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
PHASES=("$@")
[[ ${#PHASES[@]} -gt 0 ]] || PHASES=(check pinned unpinned verify sessions reload profile)
want() { [[ " ${PHASES[*]} " == *" $1 "* ]]; }

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# --- tools -------------------------------------------------------------------------------------------------
scripts/install-deps.sh cmake nginx haproxy wrk curl openssl >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
for tool in "$NGINX" "$HAPROXY" wrk curl openssl taskset; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "cargo build --release (ssogate, bench-tokens)"
cargo build --release --bin ssogate --example bench-tokens >&2
SSOGATE_BIN=${SSOGATE_BIN:-$TARGET_DIR/release/ssogate}
TOKENS_BIN=$TARGET_DIR/release/examples/bench-tokens
[[ -x $SSOGATE_BIN ]] || die "no ssogate binary at $SSOGATE_BIN"
CPUS=$(nproc)
[[ $CPUS -ge 2 ]] || die "the pinned layout needs two CPUs (this machine has $CPUS)"

# --- scratch directory, processes ----------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssogate-bench.XXXXXX")
chmod 755 "$WORK" # nginx workers drop to an unprivileged user when started as root
# ssogate watches the directories of its config and key files: logs go elsewhere.
SSO_DIR=$WORK/ssogate
LOGS=$WORK/logs
mkdir -p "$SSO_DIR" "$LOGS"
declare -A PID_OF=()
stop() { # stop NAME: TERM, then KILL after 5 s; only processes this script started
  local name=$1 pid i
  pid=${PID_OF[$name]:-}
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PID_OF[$name]"
}
cleanup() {
  local name
  for name in "${!PID_OF[@]}"; do stop "$name"; done
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USED_PORTS=" "
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # pick_port VAR
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    if [[ $USED_PORTS != *" $p "* ]] && ! port_in_use "$p"; then
      USED_PORTS+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}
for v in APP NGX HAP_PASS HAP_HS HAP_RS SSO SSO_ADMIN SSO_CHURN SSO_CHURN_ADMIN; do pick_port "${v}_PORT"; done

wait_port() { # wait_port PORT NAME: until it accepts (10 s)
  local i
  for ((i = 0; i < 100; i++)); do
    port_in_use "$1" && return 0
    sleep 0.1
  done
  die "$2 does not listen on $1 (logs: $LOGS)"
}
status_of() { # status_of URL [curl args...]
  local url=$1
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url"
}

# --- key material and credentials --------------------------------------------------------------------------------
openssl rand -hex 32 | tr -d '\n' >"$SSO_DIR/session.key"
openssl rand -hex 32 | tr -d '\n' >"$SSO_DIR/hs256.secret"
openssl rand -hex 32 | tr -d '\n' >"$WORK/wrong.secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/wrong.key" 2>/dev/null
openssl pkey -in "$WORK/rs256.key" -pubout -out "$SSO_DIR/rs256.pub.pem"
HS_SECRET=$(cat "$SSO_DIR/hs256.secret")

tokens() { "$TOKENS_BIN" jwt "$@"; }
HS_TOKEN=$(tokens HS256 "$SSO_DIR/hs256.secret" 1 3600)
HS_EXPIRED=$(tokens HS256 "$SSO_DIR/hs256.secret" 1 -120)
HS_FORGED=$(tokens HS256 "$WORK/wrong.secret" 1 3600)
RS_TOKEN=$(tokens RS256 "$WORK/rs256.key" 1 3600)
RS_EXPIRED=$(tokens RS256 "$WORK/rs256.key" 1 -120)
RS_FORGED=$(tokens RS256 "$WORK/wrong.key" 1 3600)
CHURN_TOKENS=${CHURN_TOKENS:-40000}
log "minting $CHURN_TOKENS RS256 tokens for the churn cases"
tokens RS256 "$WORK/rs256.key" "$CHURN_TOKENS" 3600 >"$WORK/churn.tokens"

# wrk scripts: the same header on every request, or a new token from a list on each.
cat >"$WORK/list.lua" <<'EOF'
-- Each wrk thread walks its own slice of the list, so no credential repeats
-- before the list is used up.
local lines, at, header, prefix = {}, 0, os.getenv("LIST_HEADER"), os.getenv("LIST_PREFIX") or ""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(os.getenv("LIST_FILE")) do lines[#lines + 1] = line end
  at = math.floor(#lines * id / tonumber(os.getenv("LIST_THREADS")))
end
function request()
  at = at % #lines + 1
  return wrk.format(nil, nil, { [header] = prefix .. lines[at] })
end
EOF

# --- configs -------------------------------------------------------------------------------------------------
BODY=$(head -c 1024 /dev/zero | tr '\0' 'x')
nginx_conf() { # nginx_conf NAME WORKERS BODY
  cat <<EOF
worker_processes $2;
daemon off;
pid $WORK/$1.pid;
error_log $LOGS/$1.error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $WORK/$1-body; proxy_temp_path $WORK/$1-proxy;
  fastcgi_temp_path $WORK/$1-fcgi; uwsgi_temp_path $WORK/$1-uwsgi; scgi_temp_path $WORK/$1-scgi;
  keepalive_requests 1000000;
$3
}
EOF
}
write_configs() { # write_configs WORKERS: every target's config for this many workers
  local workers=$1
  nginx_conf app 1 "  access_log off;
  server { listen 127.0.0.1:$APP_PORT; location / { default_type text/plain; return 200 '$BODY'; } }" >"$WORK/app.conf"
  # The baseline: a plain reverse proxy with pooled upstream connections, the
  # X-Forwarded-* headers ssogate sets, and a buffered access log line per request.
  nginx_conf proxy "$workers" "  access_log $LOGS/nginx.access.log combined buffer=64k flush=1s;
  upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-Id \$request_id;
    }
  }" >"$WORK/proxy.conf"
  # HAProxy's jwt_verify checks the signature and exp on every request (it
  # has no cache); the claim goes upstream as ssogate's identity header does.
  local jwt_rules="  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()"
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $workers
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend pass
  bind 127.0.0.1:$HAP_PASS_PORT
  default_backend app
frontend jwt_hs256
  bind 127.0.0.1:$HAP_HS_PORT
$jwt_rules
  http-request deny deny_status 401 unless { var(txn.alg) -m str HS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$HS_SECRET") -m int 1 }
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request set-header X-Auth-Request-User %[var(txn.bearer),jwt_payload_query('\$.sub')]
  default_backend app
frontend jwt_rs256
  bind 127.0.0.1:$HAP_RS_PORT
$jwt_rules
  http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$SSO_DIR/rs256.pub.pem") -m int 1 }
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request set-header X-Auth-Request-User %[var(txn.bearer),jwt_payload_query('\$.sub')]
  default_backend app
backend app
  server app 127.0.0.1:$APP_PORT
EOF
  sso_conf "$SSO_PORT" "$SSO_ADMIN_PORT" "$workers" 100000 >"$SSO_DIR/ssogate.yaml"
  # Token churn: a small cache, so that a token seen again after the list
  # wraps around is verified again too.
  sso_conf "$SSO_CHURN_PORT" "$SSO_CHURN_ADMIN_PORT" "$workers" 1024 >"$SSO_DIR/churn.yaml"
}
sso_conf() { # sso_conf PORT ADMIN_PORT THREADS CACHE_ENTRIES [COMMENT]
  cat <<EOF
# ${5:-bench}
listen: 127.0.0.1:$1
admin_listen: 127.0.0.1:$2
threads: $3
public_paths: [/public/]
upstream: http://127.0.0.1:$APP_PORT
session:
  secret_file: session.key
  secure: false
  cache_max_entries: $4
default_org: bench
organizations:
  bench:
    login_url: http://localhost:4000/sso/login
    accept_bearer: true
    keys:
      - { alg: HS256, secret_file: hs256.secret }
      - { alg: RS256, public_key_file: rs256.pub.pem }
EOF
}

# --- starting and stopping the targets -------------------------------------------------------------------------
PROXY_CPU=(taskset -c 0)
LOAD_CPU=(taskset -c 1)
start() { # start NAME CPU_PREFIX... -- COMMAND...: in the background, output to $LOGS/NAME.log
  local name=$1
  shift
  local prefix=()
  while [[ $1 != -- ]]; do
    prefix+=("$1")
    shift
  done
  shift
  "${prefix[@]}" "$@" >"$LOGS/$name.log" 2>&1 &
  PID_OF[$name]=$!
}
start_targets() { # start_targets pinned|unpinned
  local layout=$1 pin=() load=()
  if [[ $layout == pinned ]]; then
    pin=("${PROXY_CPU[@]}")
    load=("${LOAD_CPU[@]}")
    write_configs 1
  else
    write_configs 2
  fi
  start app "${load[@]}" -- "$NGINX" -p "$WORK" -e "$LOGS/app.error.log" -c "$WORK/app.conf"
  start nginx "${pin[@]}" -- "$NGINX" -p "$WORK" -e "$LOGS/proxy.error.log" -c "$WORK/proxy.conf"
  start haproxy "${pin[@]}" -- "$HAPROXY" -db -f "$WORK/haproxy.cfg"
  start ssogate "${pin[@]}" -- "$SSOGATE_BIN" run --config "$SSO_DIR/ssogate.yaml"
  start churn "${pin[@]}" -- "$SSOGATE_BIN" run --config "$SSO_DIR/churn.yaml"
  for p in "$APP_PORT:app" "$NGX_PORT:nginx" "$HAP_PASS_PORT:haproxy" "$SSO_PORT:ssogate" "$SSO_CHURN_PORT:churn"; do
    wait_port "${p%%:*}" "${p#*:}"
  done
  for admin in "$SSO_ADMIN_PORT" "$SSO_CHURN_ADMIN_PORT"; do
    for ((i = 0; i < 100; i++)); do
      [[ $(status_of "http://127.0.0.1:$admin/readyz") == 200 ]] && break
      sleep 0.1
    done
  done
  COOKIE=$(curl -s -o /dev/null -D - "http://127.0.0.1:$SSO_PORT/_sso/jwt?jwt=$HS_TOKEN" |
    tr -d '\r' | awk -F'[:;] *' 'tolower($1) == "set-cookie" && $2 ~ /^ssogate_session=/ && !n++ { print $2 }')
  [[ -n $COOKIE ]] || die "/_sso/jwt set no session cookie (log: $LOGS/ssogate.log)"
}
stop_targets() {
  local name
  for name in ssogate churn haproxy nginx app; do stop "$name"; done
}
# The PIDs whose CPU time a case is charged: the proxy's workers, not its master.
cpu_pids() { # cpu_pids NAME
  local pid=${PID_OF[$1]}
  case $1 in
    nginx) pgrep -P "$pid" || true ;;
    *) echo "$pid" ;;
  esac
}
cpu_ticks() { # cpu_ticks PID...: user + system clock ticks of these processes
  local total=0 pid
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# --- correctness first ----------------------------------------------------------------------------------------------
check_refusals() {
  local failures=0 name port good forged expired
  expect() { # expect NAME WANT URL [curl args]: WANT is a regex of acceptable statuses
    local name=$1 want=$2 url=$3 got
    shift 3
    got=$(status_of "$url" "$@")
    if [[ $got =~ ^($want)$ ]]; then
      log "check: $name -> $got"
    else
      log "check FAILED: $name -> $got (wanted $want)"
      failures=$((failures + 1))
    fi
  }
  local base
  for t in "HAProxy HS256|$HAP_HS_PORT|$HS_TOKEN|$HS_FORGED|$HS_EXPIRED" \
    "HAProxy RS256|$HAP_RS_PORT|$RS_TOKEN|$RS_FORGED|$RS_EXPIRED" \
    "ssogate Bearer HS256|$SSO_PORT|$HS_TOKEN|$HS_FORGED|$HS_EXPIRED" \
    "ssogate Bearer RS256|$SSO_PORT|$RS_TOKEN|$RS_FORGED|$RS_EXPIRED" \
    "ssogate churn RS256|$SSO_CHURN_PORT|$RS_TOKEN|$RS_FORGED|$RS_EXPIRED"; do
    IFS='|' read -r name port good forged expired <<<"$t"
    base="http://127.0.0.1:$port/app/page"
    expect "$name, valid token" 200 "$base" -H "Authorization: Bearer $good"
    expect "$name, bad signature" '401|403' "$base" -H "Authorization: Bearer $forged"
    expect "$name, expired token" '401|403' "$base" -H "Authorization: Bearer $expired"
    expect "$name, no token" '401|403' "$base"
  done
  base="http://127.0.0.1:$SSO_PORT/app/page"
  expect "ssogate cookie, valid" 200 "$base" -H "Cookie: $COOKIE"
  local tampered=${COOKIE%?}
  [[ ${COOKIE: -1} == A ]] && tampered+=B || tampered+=A
  expect "ssogate cookie, tampered" 401 "$base" -H "Cookie: $tampered"
  expect "ssogate /_sso/jwt, expired token" 401 "http://127.0.0.1:$SSO_PORT/_sso/jwt?jwt=$HS_EXPIRED"
  expect "ssogate /_sso/jwt, bad signature" 401 "http://127.0.0.1:$SSO_PORT/_sso/jwt?jwt=$HS_FORGED"
  expect "nginx proxy" 200 "http://127.0.0.1:$NGX_PORT/app/page"
  expect "HAProxy passthrough" 200 "http://127.0.0.1:$HAP_PASS_PORT/app/page"
  expect "ssogate public path" 200 "http://127.0.0.1:$SSO_PORT/public/page"
  [[ $failures -eq 0 ]] || die "$failures correctness check(s) failed: not measuring"
}

# --- load ---------------------------------------------------------------------------------------------------------
to_ms() { # wrk's 812.00us / 1.23ms / 1.02s as milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
# run_case LAYOUT NAME TARGET URL KIND ARG: KIND "header" (ARG "Name: value"), "none", or "list" (ARG file)
run_case() {
  local layout=$1 name=$2 target=$3 url=$4 kind=$5 arg=${6:-} threads=1 load=()
  [[ $layout == pinned ]] && load=("${LOAD_CPU[@]}") || threads=2
  local args=(-t"$threads" -c"$CONNECTIONS")
  case $kind in
    header) args+=(-H "$arg") ;;
    list) args+=(-s "$WORK/list.lua") ;;
  esac
  export LIST_FILE=$arg LIST_THREADS=$threads LIST_HEADER=Authorization LIST_PREFIX="Bearer "
  log "$layout: $name (${WARMUP}s warm-up, ${DURATION}s)"
  timeout $((WARMUP + 10)) "${load[@]}" wrk "${args[@]}" -d"${WARMUP}s" "$url" >/dev/null
  local pids t0 t1 out
  mapfile -t pids < <(cpu_pids "$target")
  t0=$(cpu_ticks "${pids[@]}")
  out=$(timeout $((DURATION + 20)) "${load[@]}" wrk "${args[@]}" -d"${DURATION}s" --latency "$url")
  t1=$(cpu_ticks "${pids[@]}")
  printf '%s\n' "$out" >"$LOGS/wrk-$layout-${name// /_}.txt"
  local rps reqs p50 p99 bad hz
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
  hz=$(getconf CLK_TCK)
  local cpu_us
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v q="$reqs" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / q }')
  RESULTS+=("$layout|$name|$rps|$p50|$p99|$cpu_us|$bad")
}
load_cases() { # load_cases LAYOUT
  local layout=$1 page=/app/page
  start_targets "$layout"
  check_refusals
  run_case "$layout" "nginx proxy_pass" nginx "http://127.0.0.1:$NGX_PORT$page" none
  run_case "$layout" "HAProxy passthrough" haproxy "http://127.0.0.1:$HAP_PASS_PORT$page" none
  run_case "$layout" "HAProxy jwt_verify HS256" haproxy "http://127.0.0.1:$HAP_HS_PORT$page" header "Authorization: Bearer $HS_TOKEN"
  run_case "$layout" "HAProxy jwt_verify RS256 (churn)" haproxy "http://127.0.0.1:$HAP_RS_PORT$page" list "$WORK/churn.tokens"
  run_case "$layout" "ssogate session cookie" ssogate "http://127.0.0.1:$SSO_PORT$page" header "Cookie: $COOKIE"
  run_case "$layout" "ssogate Bearer RS256 (cached)" ssogate "http://127.0.0.1:$SSO_PORT$page" header "Authorization: Bearer $RS_TOKEN"
  run_case "$layout" "ssogate public path" ssogate "http://127.0.0.1:$SSO_PORT/public/page" none
  run_case "$layout" "ssogate RS256 churn" churn "http://127.0.0.1:$SSO_CHURN_PORT$page" list "$WORK/churn.tokens"
  VERSION_SSOGATE=$("$SSOGATE_BIN" --version)
  stop_targets
}

# --- cold verification per core -------------------------------------------------------------------------------------
verify_rate() {
  log "verify: openssl speed -verify rsa2048, then criterion verify/RS256"
  local openssl_out criterion_out
  openssl_out=$("${PROXY_CPU[@]}" openssl speed -seconds 3 rsa2048 2>/dev/null)
  OPENSSL_VERIFY=$(awk '/^rsa 2048 bits/ { print $NF }' <<<"$openssl_out")
  criterion_out=$("${PROXY_CPU[@]}" cargo bench --bench validation -- 'verify/RS256' 2>/dev/null)
  # "time:   [a unit b unit c unit]": the middle estimate.
  VERIFY_US=$(awk '/verify\/RS256/ { found = 1 }
    found && /time:/ {
      match($0, /\[[^]]*\]/); split(substr($0, RSTART + 1, RLENGTH - 2), t, " ")
      v = t[3]; if (t[4] == "ms") v *= 1000; if (t[4] == "ns") v /= 1000; print v; exit
    }' <<<"$criterion_out")
  [[ -n $OPENSSL_VERIFY && -n $VERIFY_US ]] || die "could not read the verification rates"
  SSOGATE_VERIFY=$(awk -v us="$VERIFY_US" 'BEGIN { printf "%.0f", 1e6 / us }')
}

# --- one million sessions -----------------------------------------------------------------------------------------
SESSIONS=${SESSIONS:-1000000}
sessions_case() {
  write_configs 1
  sso_conf "$SSO_PORT" "$SSO_ADMIN_PORT" 1 "$SESSIONS" >"$SSO_DIR/ssogate.yaml"
  start app "${LOAD_CPU[@]}" -- "$NGINX" -p "$WORK" -e "$LOGS/app.error.log" -c "$WORK/app.conf"
  start ssogate "${PROXY_CPU[@]}" -- "$SSOGATE_BIN" run --config "$SSO_DIR/ssogate.yaml"
  wait_port "$APP_PORT" app
  wait_port "$SSO_PORT" ssogate
  log "sessions: sealing $SESSIONS session cookies"
  "$TOKENS_BIN" cookies "$SSO_DIR/ssogate.yaml" bench "$SESSIONS" >"$WORK/sessions.cookies"
  local rss_before out
  rss_before=$(awk '/^VmRSS/ { print $2 }' "/proc/${PID_OF[ssogate]}/status")
  export LIST_FILE=$WORK/sessions.cookies LIST_THREADS=1 LIST_HEADER=Cookie LIST_PREFIX=
  # One pass over the list: every cookie opened once and cached.
  local seconds=$((SESSIONS / 15000 + 10))
  log "sessions: one pass over the cookies (up to ${seconds}s)"
  out=$(timeout $((seconds + 30)) "${LOAD_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" -s "$WORK/list.lua" "http://127.0.0.1:$SSO_PORT/app/page")
  SESSIONS_SENT=$(awk '/ requests in / { print $1 }' <<<"$out")
  SESSIONS_BAD=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' <<<"$out")
  SESSIONS_RSS_BEFORE_MIB=$((rss_before / 1024))
  SESSIONS_RSS_MIB=$(($(awk '/^VmRSS/ { print $2 }' "/proc/${PID_OF[ssogate]}/status") / 1024))
  SESSIONS_ENTRIES=$(curl -s "http://127.0.0.1:$SSO_ADMIN_PORT/metrics" | awk '/^ssogate_session_cache_entries / { print $2 }')
  stop ssogate
  stop app
}

# --- reload under load ----------------------------------------------------------------------------------------------
reload_case() {
  write_configs 1
  start app "${LOAD_CPU[@]}" -- "$NGINX" -p "$WORK" -e "$LOGS/app.error.log" -c "$WORK/app.conf"
  start ssogate "${PROXY_CPU[@]}" -- "$SSOGATE_BIN" run --config "$SSO_DIR/ssogate.yaml"
  wait_port "$APP_PORT" app
  wait_port "$SSO_PORT" ssogate
  sleep 0.5
  local generation_before out i
  generation_before=$(curl -s "http://127.0.0.1:$SSO_ADMIN_PORT/metrics" | awk '/^ssogate_config_generation / { print $2 }')
  log "reload: 30 s of Bearer load, the config rewritten every second"
  timeout 60 "${LOAD_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d30s -H "Authorization: Bearer $HS_TOKEN" \
    "http://127.0.0.1:$SSO_PORT/app/page" >"$LOGS/wrk-reload.txt" &
  local wrk_pid=$!
  for ((i = 1; i <= 29; i++)); do
    sleep 1
    sso_conf "$SSO_PORT" "$SSO_ADMIN_PORT" 1 100000 "rewrite $i" >"$SSO_DIR/ssogate.yaml.new"
    mv "$SSO_DIR/ssogate.yaml.new" "$SSO_DIR/ssogate.yaml"
  done
  wait "$wrk_pid"
  out=$(cat "$LOGS/wrk-reload.txt")
  RELOAD_SENT=$(awk '/ requests in / { print $1 }' <<<"$out")
  RELOAD_BAD=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
  RELOAD_GENERATIONS=$(($(curl -s "http://127.0.0.1:$SSO_ADMIN_PORT/metrics" | awk '/^ssogate_config_generation / { print $2 }') - generation_before))
  stop ssogate
  stop app
}

# --- profile ----------------------------------------------------------------------------------------------------------
# The pinned cookie case again, sampled by perf: the share of the kernel (the
# loopback TCP every proxy pays) and the heaviest user-space symbols.
profile_case() {
  command -v perf >/dev/null || scripts/install-deps.sh linux-perf >&2
  command -v perf >/dev/null || die "perf not found"
  start_targets pinned
  log "profile: perf record -g of ssogate under the cookie load"
  timeout $((DURATION + 30)) "${LOAD_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"$((DURATION + 4))s" -H "Cookie: $COOKIE" \
    "http://127.0.0.1:$SSO_PORT/app/page" >/dev/null &
  local wrk_pid=$!
  sleep 2
  perf record -F 999 -g -o "$WORK/perf.data" -p "${PID_OF[ssogate]}" -- sleep "$DURATION" >/dev/null 2>&1 ||
    die "perf record failed (is /proc/sys/kernel/perf_event_paranoid too strict?)"
  wait "$wrk_pid" || true
  stop_targets
  PROFILE_DSO=$(perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 6 { printf "| %s | %s |\n", $2, $1 }')
  PROFILE_SYMBOLS=$(perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    awk '/^ +[0-9.]+%/ && $2 !~ /kernel/ && n++ < 25 { pct = $1; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); printf "| %s | %s |\n", substr($0, 1, 110), pct }')
}

# --- run ------------------------------------------------------------------------------------------------------------
RESULTS=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
if want check || want pinned; then
  if want pinned; then load_cases pinned; else
    start_targets pinned
    check_refusals
    stop_targets
  fi
fi
want unpinned && load_cases unpinned
want verify && verify_rate
want sessions && sessions_case
want reload && reload_case
want profile && profile_case

# --- report ---------------------------------------------------------------------------------------------------------
table() { # table LAYOUT
  local layout=$1 base_rps="" base_p99=""
  local r l name rps p50 p99 cpu bad
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r l name rps p50 p99 cpu bad <<<"$r"
    [[ $l == "$layout" && $name == "nginx proxy_pass" ]] && base_rps=$rps base_p99=$p99
  done
  [[ -n $base_rps ]] || return 0
  echo "| target | req/s | × nginx | p50 ms | p99 ms | p99 − nginx p99 | CPU µs/req | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r l name rps p50 p99 cpu bad <<<"$r"
    [[ $l == "$layout" ]] || continue
    awk -v n="$name" -v r="$rps" -v a="$p50" -v b="$p99" -v c="$cpu" -v e="$bad" -v br="$base_rps" -v bb="$base_p99" \
      'BEGIN { printf "| %s | %.0f | %.2f | %.3f | %.3f | %+.3f | %s | %d |\n", n, r, r / br, a, b, b - bb, c, e }'
  done
}
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bench/run.sh\` ($STARTED, ${PHASES[*]}). Ratios compare targets measured in the same run on the same"
  echo "machine; absolute numbers move between runs and machines, ratios much less."
  echo
  echo "- machine: $CPUS CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)"
  echo "- ${VERSION_SSOGATE:-$("$SSOGATE_BIN" --version)}; $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); $("$HAPROXY" -v | head -n1 | cut -d' ' -f1-3); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
  echo "- load: wrk, $CONNECTIONS keep-alive connections, GET with a 1 KiB answer from an nginx upstream, ${WARMUP} s warm-up then ${DURATION} s"
  echo "- load average before the run: $LOAD_BEFORE"
  echo "- ssogate logs one JSON access line per request (the default); nginx writes a buffered access-log line per request; HAProxy logs nothing"
  if want pinned; then
    echo
    echo "## One core each: proxy on CPU 0 with one worker, wrk and the upstream on CPU 1"
    echo
    table pinned
  fi
  if want unpinned; then
    echo
    echo "## Two proxy workers, wrk with two threads, no pinning"
    echo
    table unpinned
  fi
  echo
  echo "CPU µs/req is the user + system time of the proxy's processes during the case divided by the requests served."
  echo "\"churn\" cases send a token never seen before on every request ($CHURN_TOKENS RS256 tokens, in turn), so every"
  echo "request verifies a signature; HAProxy verifies one on every request anyway."
  if want verify; then
    echo
    echo "## Cold RS256 verification, one core"
    echo
    echo "| | verifications/s |"
    echo "|---|---:|"
    echo "| openssl speed -verify rsa2048 | $OPENSSL_VERIFY |"
    echo "| ssogate token::verify (criterion verify/RS256: $VERIFY_US µs) | $SSOGATE_VERIFY |"
    awk -v a="$SSOGATE_VERIFY" -v b="$OPENSSL_VERIFY" 'BEGIN { printf "| ratio | %.2f |\n", a / b }'
  fi
  if want sessions; then
    echo
    echo "## One million sessions"
    echo
    echo "$SESSIONS distinct session cookies, each sent once (one worker, cache_max_entries: $SESSIONS):"
    echo "$SESSIONS_SENT requests ($SESSIONS_BAD not 200), RSS ${SESSIONS_RSS_BEFORE_MIB} MiB before and ${SESSIONS_RSS_MIB} MiB after,"
    echo "ssogate_session_cache_entries $SESSIONS_ENTRIES."
  fi
  if want reload; then
    echo
    echo "## Reload under load"
    echo
    echo "30 s of Bearer requests while the config file is rewritten every second: $RELOAD_SENT requests,"
    echo "$RELOAD_BAD failed, ssogate_config_generation +$RELOAD_GENERATIONS."
  fi
  if want profile; then
    echo
    echo "## Where the time goes (perf, pinned cookie case)"
    echo
    echo "Samples of the ssogate process by binary (the kernel's part is loopback TCP: the syscalls and the"
    echo "wake-ups of the peers on the other core, which nginx pays too):"
    echo
    echo "| binary | samples |"
    echo "|---|---:|"
    echo "$PROFILE_DSO"
    echo
    echo "The heaviest user-space symbols (self time):"
    echo
    echo "| symbol | samples |"
    echo "|---|---:|"
    echo "$PROFILE_SYMBOLS"
  fi
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
if want reload && [[ $RELOAD_BAD -ne 0 ]]; then die "requests failed during the reloads"; fi
if want sessions && [[ $SESSIONS_BAD -ne 0 ]]; then die "session requests failed"; fi

#!/usr/bin/env bash
# ssogate under load, with faults: the promises of SPEC 9 and 11 checked while wrk sends
# authenticated requests (a session cookie), one fault per phase.
#
#   bench/faults.sh                  # every phase (about two minutes after the build)
#   bench/faults.sh redis upstream   # only some phases: reload rotate redis upstream sigterm
#   SSOGATE_BIN=path bench/faults.sh # use an existing binary (bench-tokens is still built,
#                                    # unless TOKENS_BIN names one too)
#   KEEP=1 bench/faults.sh           # keep the scratch directory (configs, logs, wrk output)
#
# Phases:
#   reload    the config rewritten every second for 30 s, valid and invalid in turn:
#             no request fails, each valid version is live within 2 s (ssogate_config_generation
#             and a public path only that version has), each invalid one counts a reload error
#   rotate    the org key rotated twice by a Kubernetes `..data` swap of the secrets volume:
#             the new key works within 2 s, the old one is refused, no cookie request fails,
#             nor a Bearer request with the key in service
#   redis     Redis killed, then restarted: no cookie request fails; a jti login answers 503
#             (no cookie) while Redis is down, 302 before and again after, without a restart
#   upstream  the app killed, then restarted: answers are 502 with ssogate's page meanwhile,
#             nothing hangs, the first request after the restart reaches the app
#   sigterm   SIGTERM while slow downloads are in flight under load: every one of them
#             completes, ssogate exits 0
# Verdicts count requests and compare with the contract's bounds (2 s for a change to be live);
# none depends on how fast the machine is. The script exits 1 when a promise is broken.
# Everything listens on 127.0.0.1 on free ports; only what this script started is stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

KEEP=${KEEP:-0}
CONNECTIONS=${CONNECTIONS:-16}
PHASES=("$@")
[[ ${#PHASES[@]} -gt 0 ]] || PHASES=(reload rotate redis upstream sigterm)
want() { [[ " ${PHASES[*]} " == *" $1 "* ]]; }

log() { printf 'faults: %s\n' "$*" >&2; }
die() {
  printf 'faults: error: %s\n' "$*" >&2
  exit 2
}

# --- tools -------------------------------------------------------------------------------------------
for tool in nginx redis-server wrk curl openssl; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh $tool)"
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${SSOGATE_BIN:-} ]]; then
  log "cargo build --release (ssogate, bench-tokens)"
  cargo build --release --bin ssogate --example bench-tokens >&2
  SSOGATE_BIN=$TARGET_DIR/release/ssogate
  TOKENS_BIN=$TARGET_DIR/release/examples/bench-tokens
elif [[ -z ${TOKENS_BIN:-} ]]; then
  profile=$(basename "$(dirname "$SSOGATE_BIN")")
  log "cargo build --$profile --example bench-tokens"
  if [[ $profile == release ]]; then cargo build --release --example bench-tokens >&2; else cargo build --example bench-tokens >&2; fi
  TOKENS_BIN=$(dirname "$SSOGATE_BIN")/examples/bench-tokens
fi
[[ -x $SSOGATE_BIN && -x $TOKENS_BIN ]] || die "no binaries at $SSOGATE_BIN, $TOKENS_BIN"

# --- scratch directory, processes ----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssogate-faults.XXXXXX")
chmod 755 "$WORK"
# ssogate watches the directories of its config and key files: logs and keys to mint with live elsewhere.
CONF_DIR=$WORK/config
SECRETS=$WORK/secrets
LOGS=$WORK/logs
KEYS=$WORK/keys
mkdir -p "$CONF_DIR" "$SECRETS" "$LOGS" "$KEYS" "$WORK/www/slow"
declare -A PID_OF=()
stop() { # stop NAME [SIGNAL]: SIGNAL (TERM), then KILL after 5 s; only processes this script started
  local name=$1 sig=${2:-TERM} pid i
  pid=${PID_OF[$name]:-}
  [[ -n $pid ]] || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
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
  for name in "${!PID_OF[@]}"; do stop "$name" KILL; done
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
for v in APP SSO SSO_ADMIN REDIS; do pick_port "${v}_PORT"; done
wait_port() { # wait_port PORT NAME: until it accepts (10 s)
  local i
  for ((i = 0; i < 100; i++)); do
    port_in_use "$1" && return 0
    sleep 0.1
  done
  die "$2 does not listen on $1 (logs: $LOGS)"
}
now_ms() { date +%s%3N; }

# --- verdicts --------------------------------------------------------------------------------------------
FAILURES=0
REPORT=()
check() { # check PHASE "what" CONDITION_EXIT_STATUS: record a verdict
  local phase=$1 what=$2 ok=$3
  if [[ $ok == 0 ]]; then
    log "ok    [$phase] $what"
  else
    log "FAIL  [$phase] $what"
    FAILURES=$((FAILURES + 1))
    REPORT+=("| $phase | FAILED: $what |")
  fi
}
expect() { # expect PHASE "what" TEST...: check with the exit status of a test command
  local phase=$1 what=$2
  shift 2
  if "$@"; then check "$phase" "$what" 0; else check "$phase" "$what" 1; fi
}
note() { # note PHASE "text": a number for the report
  REPORT+=("| $1 | $2 |")
  log "      [$1] $2"
}

# --- the app: nginx, one process (so that killing it kills it) -----------------------------------------------
head -c 16384 /dev/zero | tr '\0' 'x' >"$WORK/www/slow/file"
cat >"$WORK/app.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/app.pid;
error_log $LOGS/app.error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $WORK/app-body; proxy_temp_path $WORK/app-proxy;
  fastcgi_temp_path $WORK/app-fcgi; uwsgi_temp_path $WORK/app-uwsgi; scgi_temp_path $WORK/app-scgi;
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$APP_PORT;
    # 16 KiB at 4 KiB/s: a download that stays in flight for about 4 s
    location /slow/ { root $WORK/www; limit_rate 4k; }
    location / { default_type text/plain; return 200 'ok'; }
  }
}
EOF
start_app() {
  nginx -p "$WORK" -e "$LOGS/app.error.log" -c "$WORK/app.conf" >>"$LOGS/app.log" 2>&1 &
  PID_OF[app]=$!
  wait_port "$APP_PORT" app
}
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >>"$LOGS/redis.log" 2>&1 &
  PID_OF[redis]=$!
  wait_port "$REDIS_PORT" redis-server
}

# --- the secrets volume, as the kubelet's atomic writer lays it out -------------------------------------------
# ..<stamp>/<files>, ..data -> ..<stamp>, <file> -> ..data/<file>; an update writes a new stamp directory,
# points ..data_tmp at it, renames it over ..data and removes the old directory.
for k in k1 k2 k3; do openssl rand -hex 32 >"$KEYS/$k.secret"; done
openssl rand -hex 32 >"$KEYS/session.key"
STAMP=0
volume_write() { # volume_write ORG_KEY: a new stamp with session.key and org.secret, swapped in
  local key=$1 old=${VOLUME_DIR:-} dir
  STAMP=$((STAMP + 1))
  dir="..$(date -u +%Y_%m_%d_%H_%M_%S).$STAMP"
  mkdir "$SECRETS/$dir"
  cp "$KEYS/session.key" "$SECRETS/$dir/session.key"
  cp "$KEYS/$key.secret" "$SECRETS/$dir/org.secret"
  ln -sfn "$dir" "$SECRETS/..data_tmp"
  mv -T "$SECRETS/..data_tmp" "$SECRETS/..data"
  for f in session.key org.secret; do
    [[ -L $SECRETS/$f ]] || ln -s "..data/$f" "$SECRETS/$f"
  done
  [[ -z $old ]] || rm -rf "${SECRETS:?}/$old"
  VOLUME_DIR=$dir
}
volume_write k1

sso_conf() { # sso_conf VERSION [invalid]
  cat <<EOF
# version $1
listen: 127.0.0.1:$SSO_PORT
admin_listen: 127.0.0.1:$SSO_ADMIN_PORT
threads: 2
upstream: http://127.0.0.1:$APP_PORT
replay_store: redis://127.0.0.1:$REDIS_PORT/0
public_paths: [/public/, /v$1/]
session:
  secret_file: $SECRETS/session.key
  secure: false
default_org: bench
organizations:
  bench:
    login_url: http://localhost:4000/sso/login
    accept_bearer: true
    keys:
      - { alg: HS256, secret_file: $SECRETS/org.secret }
EOF
  [[ ${2:-} != invalid ]] || echo "not_a_field: $1"
}
write_conf() { # write_conf VERSION [invalid]: replaced in one rename, as an editor or a deploy tool would
  sso_conf "$@" >"$CONF_DIR/config.yaml.new"
  mv "$CONF_DIR/config.yaml.new" "$CONF_DIR/config.yaml"
}
write_conf 0
SSO_EXIT=""
start_ssogate() {
  "$SSOGATE_BIN" run --config "$CONF_DIR/config.yaml" >>"$LOGS/ssogate.log" 2>&1 &
  PID_OF[ssogate]=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$SSO_ADMIN_PORT/readyz") == 200 ]] && return 0
    sleep 0.1
  done
  die "ssogate not ready (log: $LOGS/ssogate.log)"
}

metric() { # metric NAME [LABELS]: the value of one series (0 when absent)
  local want=$1
  [[ -z ${2:-} ]] || want="$1{$2}"
  curl -s --max-time 5 "http://127.0.0.1:$SSO_ADMIN_PORT/metrics" |
    awk -v want="$want" '$1 == want { v = $2 } END { print v + 0 }'
}
BASE=http://127.0.0.1:$SSO_PORT
status_of() { # status_of URL [curl args...]
  local url=$1
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url"
}

# --- credentials ------------------------------------------------------------------------------------------
TOKEN_TTL=3600
mint() { "$TOKENS_BIN" jwt HS256 "$KEYS/$1.secret" "$2" "$TOKEN_TTL"; }
declare -A PROBES_LEFT=()
next_token() { # next_token KEY: a token never used before (its jti is fresh), signed with KEY
  local key=$1 file=$WORK/probes-$1
  if [[ ! -s $file ]]; then mint "$key" 200 >"$file"; fi
  head -n1 "$file"
  sed -i 1d "$file"
}
jwt_login() { # jwt_login KEY: "STATUS SETS_COOKIE SECONDS" of /_sso/jwt with a fresh token
  local out
  out=$(curl -s -o /dev/null -D - --max-time 10 -w 'time %{time_total}\n' "$BASE/_sso/jwt?jwt=$(next_token "$1")" | tr -d '\r')
  local status cookie=no time
  status=$(awk 'NR == 1 { print $2 }' <<<"$out")
  grep -qi '^set-cookie: ssogate_session=[^;]' <<<"$out" && cookie=yes
  time=$(awk '/^time / { print $2 }' <<<"$out")
  echo "${status:-000} $cookie ${time:-0}"
}

# --- load --------------------------------------------------------------------------------------------------
cat >"$WORK/statuses.lua" <<'EOF'
-- Counts answers by status; done() prints them with the socket errors and the slowest answer.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\n", k, v)) end
  local e = summary.errors
  io.write(string.format("errors %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("max_ms %.1f\n", latency.max / 1000))
end
EOF
wrk_start() { # wrk_start NAME SECONDS HEADER [PATH]: load in the background
  local name=$1 seconds=$2 header=$3 path=${4:-/app/page}
  wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s -s "$WORK/statuses.lua" -H "$header" \
    "$BASE$path" >"$LOGS/wrk-$name.txt" 2>&1 &
  PID_OF[wrk-$name]=$!
}
# wrk_wait NAME: waits (bounded), then sets W_REQUESTS W_OK (200s) W_502 W_OTHER W_CONNECT W_READ W_WRITE W_TIMEOUT W_MAX_MS
wrk_wait() {
  local name=$1 pid=${PID_OF[wrk-$1]} i
  for ((i = 0; i < 1200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && die "wrk ($name) did not end"
  wait "$pid" || true
  unset "PID_OF[wrk-$name]"
  local out=$LOGS/wrk-$name.txt
  W_REQUESTS=$(awk '$1 == "requests" { print $2 }' "$out")
  W_OK=$(awk '$1 == "status" && $2 == 200 { n += $3 } END { print n + 0 }' "$out")
  W_502=$(awk '$1 == "status" && $2 == 502 { n += $3 } END { print n + 0 }' "$out")
  W_OTHER=$(awk '$1 == "status" && $2 != 200 && $2 != 502 { n += $3 } END { print n + 0 }' "$out")
  read -r W_CONNECT W_READ W_WRITE W_TIMEOUT < <(awk '$1 == "errors" { print $2, $3, $4, $5 }' "$out")
  W_MAX_MS=$(awk '$1 == "max_ms" { print $2 }' "$out")
  [[ -n $W_REQUESTS ]] || die "no wrk summary in $out"
}
wrk_summary() { # wrk_summary NAME
  echo "$W_REQUESTS requests: $W_OK × 200, $W_502 × 502, $W_OTHER other; socket errors connect $W_CONNECT read $W_READ write $W_WRITE timeout $W_TIMEOUT; slowest ${W_MAX_MS} ms"
}
no_failed_requests() { [[ $W_OK -eq $W_REQUESTS && $((W_502 + W_OTHER + W_CONNECT + W_READ + W_WRITE + W_TIMEOUT)) -eq 0 && $W_REQUESTS -gt 0 ]]; }

# wait_for MS COMMAND...: polls COMMAND every 50 ms for up to MS; sets WAITED_MS; fails when it never held
wait_for() {
  local budget=$1 t0 t
  shift
  t0=$(now_ms)
  while true; do
    if "$@"; then
      WAITED_MS=$(($(now_ms) - t0))
      return 0
    fi
    t=$(now_ms)
    if ((t - t0 > budget)); then
      WAITED_MS=$((t - t0))
      return 1
    fi
    sleep 0.05
  done
}
metric_above() { # metric_above NAME LABELS VALUE
  awk -v a="$(metric "$1" "$2")" -v b="$3" 'BEGIN { exit !(a > b) }'
}

# --- start -----------------------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
start_app
start_redis
start_ssogate
CURRENT_KEY=k1
login=$(curl -s -o /dev/null -D - --max-time 10 "$BASE/_sso/jwt?jwt=$(next_token k1)" | tr -d '\r')
COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: \(ssogate_session=[^;]*\).*/\1/p' <<<"$login" | head -n1)
[[ -n $COOKIE ]] || die "/_sso/jwt set no session cookie (log: $LOGS/ssogate.log)"
[[ $(status_of "$BASE/app/page" -H "Cookie: $COOKIE") == 200 ]] || die "the session cookie is not accepted"
log "ssogate $("$SSOGATE_BIN" --version) on 127.0.0.1:$SSO_PORT, app :$APP_PORT, redis :$REDIS_PORT"

# --- (a) reload: a rewrite every second, valid and invalid in turn -------------------------------------------
reload_phase() {
  local p=reload i gen errors t_next worst_valid=0 worst_invalid=0 late=0 dead=0 unchanged=0 valid=0 invalid=0
  log "reload: 30 rewrites, one a second, under cookie load"
  wrk_start reload 35 "Cookie: $COOKIE"
  sleep 1
  t_next=$(($(now_ms) + 1000))
  for ((i = 1; i <= 30; i++)); do
    while (($(now_ms) < t_next)); do sleep 0.02; done
    t_next=$((t_next + 1000))
    gen=$(metric ssogate_config_generation)
    errors=$(metric ssogate_config_reloads_total 'result="error"')
    if ((i % 2 == 1)); then
      valid=$((valid + 1))
      write_conf "$i"
      if wait_for 2000 metric_above ssogate_config_generation "" "$gen"; then
        ((WAITED_MS > worst_valid)) && worst_valid=$WAITED_MS
        # the version's own public path answers without a credential
        [[ $(status_of "$BASE/v$i/x") == 200 ]] || dead=$((dead + 1))
      else
        late=$((late + 1))
      fi
    else
      invalid=$((invalid + 1))
      write_conf "$i" invalid
      if wait_for 2000 metric_above ssogate_config_reloads_total 'result="error"' "$errors"; then
        ((WAITED_MS > worst_invalid)) && worst_invalid=$WAITED_MS
        [[ $(metric ssogate_config_generation) == "$gen" ]] || unchanged=$((unchanged + 1))
      else
        late=$((late + 1))
      fi
    fi
  done
  wrk_wait reload
  note $p "30 rewrites ($valid valid, $invalid invalid) under load: $(wrk_summary)"
  note $p "slowest to go live: valid ${worst_valid} ms, invalid counted ${worst_invalid} ms (bound 2000 ms)"
  expect $p "no request failed during the reloads" no_failed_requests
  expect $p "every rewrite seen within 2 s ($late late)" test "$late" -eq 0
  expect $p "every valid version serves its own public path ($dead did not)" test "$dead" -eq 0
  expect $p "no invalid version replaced the config ($unchanged did)" test "$unchanged" -eq 0
  # leave a valid config in place for the next phases
  write_conf 100
  v100_live() { [[ $(status_of "$BASE/v100/x") == 200 ]]; }
  wait_for 5000 v100_live || die "reload: the last valid version did not go live"
}

# --- (b) rotate: the org key changes by a `..data` swap --------------------------------------------------------
bearer_status() { status_of "$BASE/app/page" -H "Authorization: Bearer $1"; }
bearer_is() { [[ $(bearer_status "$1") == "$2" ]]; }
rotate_phase() {
  local p=rotate from to old_token new_token gen worst=0 late=0 old_kept=0 rounds=0
  log "rotate: two key rotations by ..data swap, under cookie load"
  wrk_start rotate 14 "Cookie: $COOKIE"
  sleep 1
  for to in k2 k3; do
    from=$CURRENT_KEY
    old_token=$(next_token "$from")
    new_token=$(next_token "$to")
    [[ $(bearer_status "$old_token") == 200 ]] || die "rotate: the key in service ($from) is refused"
    # a Bearer load with the key in service must not fail until the swap
    wrk_start "bearer-$from" 2 "Authorization: Bearer $old_token"
    wrk_wait "bearer-$from"
    note $p "Bearer with $from before the swap: $(wrk_summary)"
    expect $p "no Bearer request with the key in service ($from) failed" no_failed_requests
    gen=$(metric ssogate_config_generation)
    volume_write "$to"
    rounds=$((rounds + 1))
    if wait_for 2000 bearer_is "$new_token" 200; then
      ((WAITED_MS > worst)) && worst=$WAITED_MS
    else
      late=$((late + 1))
    fi
    CURRENT_KEY=$to
    bearer_is "$old_token" 401 || old_kept=$((old_kept + 1))
    expect $p "generation grew with the swap to $to" metric_above ssogate_config_generation "" "$gen"
    wrk_start "bearer-$to" 2 "Authorization: Bearer $new_token"
    wrk_wait "bearer-$to"
    note $p "Bearer with $to after the swap: $(wrk_summary)"
    expect $p "no Bearer request with the new key ($to) failed" no_failed_requests
  done
  wrk_wait rotate
  note $p "$rounds rotations; cookie load: $(wrk_summary)"
  note $p "slowest rotation to go live: ${worst} ms (bound 2000 ms)"
  expect $p "no cookie request failed during the rotations" no_failed_requests
  expect $p "the new key worked within 2 s after each swap ($late late)" test "$late" -eq 0
  expect $p "the old key was refused after each swap ($old_kept still accepted)" test "$old_kept" -eq 0
}

# --- (c) redis: killed, then restarted ------------------------------------------------------------------------
redis_phase() {
  local p=redis r status cookie secs down=0 down_bad=0 slowest=0 recovered after_bad=0 i t_up
  log "redis: killed and restarted under cookie load"
  for i in 1 2 3; do
    read -r status cookie secs <<<"$(jwt_login "$CURRENT_KEY")"
    [[ $status == 302 && $cookie == yes ]] || die "redis: a jti login before the fault answered $status"
  done
  local e_spend e_check
  e_spend=$(metric ssogate_replay_store_errors_total 'op="spend"')
  e_check=$(metric ssogate_replay_store_errors_total 'op="check"')
  wrk_start redis 9 "Cookie: $COOKIE"
  sleep 1
  stop redis KILL
  log "redis: killed"
  # jti logins while Redis is down: 503 and no cookie, each answered promptly
  local t_end=$(($(now_ms) + 3000))
  while (($(now_ms) < t_end)); do
    read -r status cookie secs <<<"$(jwt_login "$CURRENT_KEY")"
    down=$((down + 1))
    [[ $status == 503 && $cookie == no ]] || down_bad=$((down_bad + 1))
    awk -v s="$secs" -v m="$slowest" 'BEGIN { exit !(s > m) }' && slowest=$secs
    sleep 0.2
  done
  start_redis
  t_up=$(now_ms)
  log "redis: restarted"
  recovered=""
  while (($(now_ms) - t_up < 10000)); do
    read -r status cookie secs <<<"$(jwt_login "$CURRENT_KEY")"
    if [[ $status == 302 && $cookie == yes ]]; then
      recovered=$(($(now_ms) - t_up))
      break
    fi
    [[ $status == 503 ]] || after_bad=$((after_bad + 1))
    sleep 0.1
  done
  for i in $(seq 10); do
    read -r status cookie secs <<<"$(jwt_login "$CURRENT_KEY")"
    [[ $status == 302 && $cookie == yes ]] || after_bad=$((after_bad + 1))
  done
  wrk_wait redis
  note $p "cookie load: $(wrk_summary)"
  note $p "jti logins while down: $down, $down_bad not 503-without-cookie, slowest ${slowest} s"
  note $p "jti logins work again ${recovered:-never} ms after Redis listens; store errors: spend +$(($(metric ssogate_replay_store_errors_total 'op="spend"') - e_spend)), check +$(($(metric ssogate_replay_store_errors_total 'op="check"') - e_check))"
  expect $p "no cookie request failed while Redis was down" no_failed_requests
  expect $p "every jti login answered 503 without a cookie while Redis was down" test "$down_bad" -eq 0 -a "$down" -gt 0
  expect $p "no jti login waited past the store's 1 s timeout by much (slowest ${slowest} s < 3 s)" awk -v s="$slowest" 'BEGIN { exit !(s < 3) }'
  expect $p "jti logins recovered without a restart (within 10 s) and stayed up" test -n "$recovered" -a "$after_bad" -eq 0
}

# --- (d) upstream: the app killed, then restarted ----------------------------------------------------------------
upstream_phase() {
  local p=upstream out status body i bad=0 probes=0 first after_bad=0 slowest=0 secs
  log "upstream: the app killed and restarted under cookie load"
  wrk_start upstream 8 "Cookie: $COOKIE"
  sleep 1.5
  stop app KILL
  log "upstream: app killed"
  local t_end=$(($(now_ms) + 3000))
  while (($(now_ms) < t_end)); do
    probes=$((probes + 1))
    # a script gets JSON, a browser the HTML page, both with a request id
    out=$(curl -s --max-time 10 -w '\n%{http_code} %{time_total}' -H "Cookie: $COOKIE" -H 'Accept: application/json' "$BASE/app/page")
    read -r status secs <<<"$(tail -n1 <<<"$out")"
    body=$(sed '$d' <<<"$out")
    [[ $status == 502 && $body == *'"error":"upstream_unavailable"'* && $body == *'"request_id"'* ]] || bad=$((bad + 1))
    awk -v s="$secs" -v m="$slowest" 'BEGIN { exit !(s > m) }' && slowest=$secs
    out=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Cookie: $COOKIE" -H 'Accept: text/html' -H 'Sec-Fetch-Mode: navigate' "$BASE/app/page")
    status=$(tail -n1 <<<"$out")
    body=$(sed '$d' <<<"$out")
    [[ $status == 502 && $body == *'The application is unavailable'* && $body == *'Request id'* ]] || bad=$((bad + 1))
    sleep 0.2
  done
  start_app
  first=$(status_of "$BASE/app/page" -H "Cookie: $COOKIE")
  for i in $(seq 20); do
    [[ $(status_of "$BASE/app/page" -H "Cookie: $COOKIE") == 200 ]] || after_bad=$((after_bad + 1))
  done
  wrk_wait upstream
  note $p "load: $(wrk_summary)"
  note $p "while the app was down: $probes probes, $bad answers not ssogate's 502 page, slowest ${slowest} s; first answer after the restart: $first"
  expect $p "the app's absence answered 502 with ssogate's page (JSON and HTML)" test "$bad" -eq 0 -a "$probes" -gt 0
  expect $p "under load, every answer was 200 or 502, none timed out" \
    test "$W_OTHER" -eq 0 -a $((W_CONNECT + W_WRITE + W_TIMEOUT)) -eq 0 -a "$W_502" -gt 0
  # wrk counts a read error when a connection it may reuse is closed under its next request
  expect $p "every request under load was answered ($W_READ sent on a connection closed after a 502)" \
    test "$W_READ" -eq 0
  expect $p "nothing hung (slowest probe ${slowest} s < 2 s, slowest loaded answer ${W_MAX_MS} ms < 5000)" \
    awk -v s="$slowest" -v m="$W_MAX_MS" 'BEGIN { exit !(s < 2 && m < 5000) }'
  expect $p "the first request after the restart reached the app, and the next 20 ($after_bad failed)" \
    test "$first" == 200 -a "$after_bad" -eq 0
}

# --- (e) sigterm: requests in flight complete ------------------------------------------------------------------
sigterm_phase() {
  local p=sigterm n=8 i t_term exited=no code="" t_exit bad=0
  log "sigterm: $n slow downloads in flight under cookie load, then SIGTERM"
  wrk_start sigterm 6 "Cookie: $COOKIE"
  for ((i = 1; i <= n; i++)); do
    curl -s --max-time 60 -D "$WORK/slow-$i.head" -o "$WORK/slow-$i.body" -w '%{http_code} %{size_download}\n' \
      -H "Cookie: $COOKIE" "$BASE/slow/file" >"$WORK/slow-$i.out" 2>&1 &
    PID_OF[slow-$i]=$!
  done
  # in flight: every response head has arrived (the bodies take about 4 s more)
  heads_in() { local j; for ((j = 1; j <= n; j++)); do grep -q '^HTTP/1.1 200' "$WORK/slow-$j.head" 2>/dev/null || return 1; done; }
  wait_for 10000 heads_in || die "sigterm: the slow downloads did not start"
  sleep 0.5
  t_term=$(now_ms)
  kill -TERM "${PID_OF[ssogate]}"
  log "sigterm: sent"
  for ((i = 1; i <= n; i++)); do
    wait "${PID_OF[slow-$i]}" || true
    unset "PID_OF[slow-$i]"
    [[ $(cat "$WORK/slow-$i.out") == "200 16384" ]] || bad=$((bad + 1))
  done
  local pid=${PID_OF[ssogate]}
  for ((i = 0; i < 400; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    exited=yes
    t_exit=$(($(now_ms) - t_term))
    code=0
    wait "$pid" || code=$?
    unset "PID_OF[ssogate]"
  fi
  wrk_wait sigterm
  note $p "load: $(wrk_summary) (socket errors: connections opened after SIGTERM are not served, idle keep-alive ones are closed)"
  note $p "$n downloads in flight at SIGTERM, $bad incomplete; ssogate exited ${t_exit:-never} ms after SIGTERM with status ${code:-none}"
  expect $p "every download in flight completed (200, 16384 bytes)" test "$bad" -eq 0
  expect $p "no answer under load other than 200" test "$W_OTHER" -eq 0 -a "$W_502" -eq 0
  expect $p "ssogate exited 0 after draining" test "$exited" == yes -a "$code" == 0
}

want reload && reload_phase
want rotate && rotate_phase
want redis && redis_phase
want upstream && upstream_phase
want sigterm && sigterm_phase

# --- report ---------------------------------------------------------------------------------------------------
{
  echo "# Faults under load"
  echo
  echo "Written by \`bench/faults.sh\` ($STARTED, ${PHASES[*]}): $("$SSOGATE_BIN" --version), $(nproc) CPUs,"
  echo "wrk with $CONNECTIONS connections and a session cookie, load average before: $LOAD_BEFORE."
  echo
  echo "| phase | result |"
  echo "|---|---|"
  printf '%s\n' "${REPORT[@]}"
  echo
  if [[ $FAILURES -eq 0 ]]; then echo "Every promise held."; else echo "$FAILURES promise(s) broken."; fi
} | tee "$LOGS/report.md"
[[ $FAILURES -eq 0 ]] || exit 1

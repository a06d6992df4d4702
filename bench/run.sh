#!/usr/bin/env bash
# Side-by-side load comparison of ssogate and nginx, in one run, on loopback.
#
#   bench/run.sh                      # install nginx + wrk if missing, build, run every case
#   DURATION=5s bench/run.sh          # shorter runs
#   SSOGATE_BIN=path bench/run.sh     # use an existing binary instead of building
#   KEEP=1 bench/run.sh               # keep the scratch directory (configs, logs)
#
# Cases (the same wrk settings for each; see bench/README.md):
#   a  upstream        the app itself (nginx `return 200 'ok'`), no proxy
#   b  nginx           nginx as a plain reverse proxy, no auth   <- the baseline
#   c  cookie          ssogate, valid session cookie (cache hit after the first)
#   d  bearer-rs256    ssogate, Authorization: Bearer RS256 token (cache hit after the first)
#   e  login-302       ssogate, unauthenticated navigation -> 302 to login_url + state cookie
#   f  nginx+auth_req  nginx auth_request to an always-200 auth endpoint, then proxy
#   g  public          ssogate, a `public_paths` URL: no auth at all, the cost of ssogate's proxying alone
#
# Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
KEEP=${KEEP:-0}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# --- tools -----------------------------------------------------------------
scripts/install-deps.sh nginx wrk curl openssl >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx not found"
command -v wrk >/dev/null || die "wrk not found"

if [[ -z ${SSOGATE_BIN:-} ]]; then
  log "cargo build --release --bin ssogate"
  cargo build --release --bin ssogate >&2
  SSOGATE_BIN="${CARGO_TARGET_DIR:-target}/release/ssogate"
fi
[[ -x $SSOGATE_BIN ]] || die "no ssogate binary at $SSOGATE_BIN"
SSOGATE_BIN=$(cd "$(dirname "$SSOGATE_BIN")" && pwd)/$(basename "$SSOGATE_BIN")

# --- scratch directory and teardown ------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssogate-bench.XXXXXX")
# nginx workers drop to an unprivileged user when started as root.
chmod 755 "$WORK"
# ssogate watches the directories of its config and key files: keep the logs
# elsewhere, or every log line would be a file event for its watcher.
SSO_DIR=$WORK/ssogate
LOGS=$WORK/logs
mkdir -p "$SSO_DIR" "$LOGS"
PIDS=()
cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- free loopback ports -------------------------------------------------------
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
pick_port APP_PORT        # the app (upstream)
pick_port AUTH_PORT       # the always-200 auth endpoint
pick_port NGX_PROXY_PORT  # nginx plain reverse proxy
pick_port NGX_AUTHREQ_PORT # nginx with auth_request
pick_port SSO_PORT        # ssogate proxy
pick_port SSO_ADMIN_PORT  # ssogate admin

# wait_http URL: until it answers at all (bounded, 10 s).
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  die "nothing answers at $1 (logs: $LOGS)"
}

# --- the app and the nginx proxies ----------------------------------------------
common_nginx() { # common_nginx NAME
  cat <<EOF
worker_processes auto;
daemon off;
pid $WORK/$1.pid;
error_log $LOGS/$1.error.log warn;
events { worker_connections 4096; }
EOF
}
temp_paths() {
  local d
  for d in client_body proxy fastcgi uwsgi scgi; do
    echo "  ${d}_temp_path $WORK/$1-$d;"
  done
}

{
  common_nginx app
  cat <<EOF
http {
  access_log off;
$(temp_paths app)
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$APP_PORT;
    location / { default_type text/plain; return 200 'ok'; }
  }
  # The auth service of case f: says yes to everyone, names the user.
  server {
    listen 127.0.0.1:$AUTH_PORT;
    location / { add_header X-Auth-Request-User alice always; return 200; }
  }
}
EOF
} >"$WORK/app.conf"

# Proxy headers kept as close as possible to what ssogate sets: X-Forwarded-*,
# HTTP/1.1 with pooled upstream connections (pingora pools them too), one
# access-log line per request (ssogate logs one JSON line per request).
# shellcheck disable=SC2016 # nginx variables, expanded by nginx
proxy_common='proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-Id $request_id;'
{
  common_nginx proxy
  cat <<EOF
http {
  access_log $LOGS/nginx-proxy.access.log;
$(temp_paths proxy)
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; }
  upstream auth { server 127.0.0.1:$AUTH_PORT; keepalive 64; }
  # b: plain reverse proxy.
  server {
    listen 127.0.0.1:$NGX_PROXY_PORT;
    location / {
      proxy_pass http://app;
      $proxy_common
    }
  }
  # f: the oauth2-proxy pattern, one auth sub-request per request.
  server {
    listen 127.0.0.1:$NGX_AUTHREQ_PORT;
    location / {
      auth_request /_auth;
      auth_request_set \$auth_user \$upstream_http_x_auth_request_user;
      proxy_set_header X-Auth-Request-User \$auth_user;
      proxy_pass http://app;
      $proxy_common
    }
    location = /_auth {
      internal;
      proxy_pass http://auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      $proxy_common
    }
  }
}
EOF
} >"$WORK/proxy.conf"

for name in app proxy; do
  "$NGINX" -t -q -p "$WORK" -e "$LOGS/$name.error.log" -c "$WORK/$name.conf" >&2 ||
    die "nginx refuses $WORK/$name.conf"
done
for name in app proxy; do
  "$NGINX" -p "$WORK" -e "$LOGS/$name.error.log" -c "$WORK/$name.conf" 2>"$LOGS/$name.stderr" &
  PIDS+=($!)
done

# --- ssogate -------------------------------------------------------------------------
openssl rand -hex 32 >"$SSO_DIR/session.key"
openssl rand -hex 32 >"$SSO_DIR/hs256.secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.key" 2>/dev/null
openssl pkey -in "$WORK/rs256.key" -pubout -out "$SSO_DIR/rs256.pub.pem"
CONFIG=$SSO_DIR/ssogate.yaml
cat >"$CONFIG" <<EOF
listen: 127.0.0.1:$SSO_PORT
admin_listen: 127.0.0.1:$SSO_ADMIN_PORT
threads: 0
public_paths: [/public/]
upstream: http://127.0.0.1:$APP_PORT
session:
  secret_file: session.key
  secure: false
default_org: bench
organizations:
  bench:
    login_url: http://localhost:4000/sso/login
    accept_bearer: true
    keys:
      - { alg: HS256, secret_file: hs256.secret }
      - { alg: RS256, public_key_file: rs256.pub.pem }
EOF
"$SSOGATE_BIN" check --config "$CONFIG" >&2
"$SSOGATE_BIN" run --config "$CONFIG" 2>"$LOGS/ssogate.log" &
PIDS+=($!)

wait_http "http://127.0.0.1:$APP_PORT/"
wait_http "http://127.0.0.1:$NGX_PROXY_PORT/"
wait_http "http://127.0.0.1:$SSO_ADMIN_PORT/healthz"
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SSO_ADMIN_PORT/readyz") == 200 ]] && break
  sleep 0.1
done

# A session cookie, the way flow B makes one.
HS_TOKEN=$("$SSOGATE_BIN" mint --config "$CONFIG" --org bench --sub alice --ttl 5m)
COOKIE=$(curl -s -o /dev/null -D - "http://127.0.0.1:$SSO_PORT/_sso/jwt?jwt=$HS_TOKEN" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(ssogate_session=[^;]*\).*/\1/p' | head -n1)
[[ -n $COOKIE ]] || die "/_sso/jwt set no session cookie (log: $LOGS/ssogate.log)"
RS_TOKEN=$("$SSOGATE_BIN" mint --config "$CONFIG" --org bench --sub alice --ttl 1h \
  --key "$WORK/rs256.key")

# --- the cases -------------------------------------------------------------------------
# name|url|expected status|header (or empty)
CASES=(
  "a upstream (no proxy)|http://127.0.0.1:$APP_PORT/app/page|200|"
  "b nginx proxy (baseline)|http://127.0.0.1:$NGX_PROXY_PORT/app/page|200|"
  "c ssogate cookie|http://127.0.0.1:$SSO_PORT/app/page|200|Cookie: $COOKIE"
  "d ssogate bearer RS256|http://127.0.0.1:$SSO_PORT/app/page|200|Authorization: Bearer $RS_TOKEN"
  "e ssogate 302 login|http://127.0.0.1:$SSO_PORT/app/page|302|Sec-Fetch-Mode: navigate"
  "f nginx auth_request|http://127.0.0.1:$NGX_AUTHREQ_PORT/app/page|200|"
  "g ssogate public path|http://127.0.0.1:$SSO_PORT/public/page|200|"
)

# to_ms VALUE: wrk's 812.00us / 1.23ms / 1.02s as milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n
  }'
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
RESULTS=()
for entry in "${CASES[@]}"; do
  IFS='|' read -r name url want header <<<"$entry"
  hdr=()
  [[ -n $header ]] && hdr=(-H "$header")
  got=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "$url")
  [[ $got == "$want" ]] || die "$name: expected $want, got $got from $url"
  log "$name: warm-up $WARMUP, then $DURATION"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${hdr[@]}" "$url" >/dev/null
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${hdr[@]}" "$url")
  printf '%s\n' "$out" >"$LOGS/wrk-${name%% *}.txt"
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
  RESULTS+=("$name|$rps|$p50|$p99|$bad")
done

# --- the table -------------------------------------------------------------------------
base_rps=$(cut -d'|' -f2 <<<"${RESULTS[1]}")
base_p50=$(cut -d'|' -f3 <<<"${RESULTS[1]}")
base_p99=$(cut -d'|' -f4 <<<"${RESULTS[1]}")
cpus=$(nproc 2>/dev/null || echo '?')
echo
echo "ssogate load comparison ($(date -u +%Y-%m-%dT%H:%MZ), $("$SSOGATE_BIN" --version))"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up), GET /app/page, 127.0.0.1"
echo "ratios are against b (nginx as a plain reverse proxy): rps x = rps / baseline rps, p50/p99 x = latency / baseline latency"
printf '%-26s %10s %9s %9s %7s %7s %7s %6s\n' case req/s p50_ms p99_ms 'rps x' 'p50 x' 'p99 x' errors
for r in "${RESULTS[@]}"; do
  IFS='|' read -r name rps p50 p99 bad <<<"$r"
  awk -v n="$name" -v r="$rps" -v a="$p50" -v b="$p99" -v e="$bad" \
    -v br="$base_rps" -v ba="$base_p50" -v bb="$base_p99" 'BEGIN {
      printf "%-26s %10.0f %9.3f %9.3f %7.2f %7.2f %7.2f %6d\n", n, r, a, b, r / br, a / ba, b / bb, e
    }'
done
echo
echo "note: this machine has $cpus CPU core(s), shared by wrk ($THREADS threads), the proxy under test and the"
echo "      upstream nginx: absolute numbers are lower than on dedicated machines and partly measure wrk itself;"
echo "      every case uses the same wrk settings, so the ratios are the comparable part."
echo "      ssogate runs with its default logging (one JSON line per request, to a file); nginx logs one access-log"
echo "      line per request too; both proxies keep pooled HTTP/1.1 connections to the upstream."
echo "      load average (1/5/15 min) just before the first case: $LOAD_BEFORE; well above 0 means other"
echo "      work was sharing the cores (the run itself then raises it to about 2): rerun before trusting the numbers."

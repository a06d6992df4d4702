#!/usr/bin/env bash
# ssogate under floods (SPEC 11): a million garbage tokens, a million valid-looking but badly
# signed RS256 tokens, a million valid sessions. Reports memory (RSS), what the rate limiter and
# the validated-session cache held, how the flood was answered, and what a legitimate client at
# another address got meanwhile.
#
#   bench/floods.sh                      # the three floods, 1,000,000 requests each
#   bench/floods.sh garbage forged       # some of them: garbage forged sessions
#   COUNT=100000 bench/floods.sh         # requests per flood
#   FORGED_ADDRESSES=10000 bench/floods.sh   # client addresses the forged tokens come from
#   SSOGATE_BIN=path bench/floods.sh     # an existing binary (bench-tokens is still built)
#   KEEP=1 bench/floods.sh               # keep the scratch directory (config, logs, wrk output)
#   OUT=file bench/floods.sh             # also write the report to a file
#
# ssogate runs with two workers, the default rate limits and session cache bound, and trusts
# 127.0.0.1 as a proxy: the flood's wrk script gives each request an X-Forwarded-For entry, so
# that the flood comes from many client addresses (the garbage flood: a new address for every
# request; the forged flood: FORGED_ADDRESSES addresses in turn, default 10000, each of which
# runs out of its failure budget). Meanwhile, from two other addresses, a legitimate client
# sends requests with its session cookie (wrk, two connections) and signs in afresh through
# /_sso/jwt five times a second (curl).
#
# The verdict does not depend on the machine's speed, only on what was answered; exit 1 when:
#   - a flood request was let through (a garbage or forged token answered anything but 401 or
#     429, a valid session anything but 200), or ssogate answered a 5xx;
#   - the legitimate client got anything but 200 for its requests, or 302 for its logins, or
#     nothing at all;
#   - the limiter remembered more client addresses than its bound (100000), or the session
#     cache more sessions than cache_max_entries (sampled twice a second and after each flood).
# RSS, rates and the mix of 401 and 429 are reported, not judged. A flood that has not finished
# after CAP seconds (default 1800) is stopped and reported as such.
# Everything listens on 127.0.0.1; only what this script started is stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

COUNT=${COUNT:-1000000}
FORGED_ADDRESSES=${FORGED_ADDRESSES:-10000}
CACHE_ENTRIES=${CACHE_ENTRIES:-100000}
LIMITER_BOUND=100000 # limit::MAX_ADDRESSES
CONNECTIONS=${CONNECTIONS:-64}
CAP=${CAP:-1800}
KEEP=${KEEP:-0}
OUT=${OUT:-}
FLOODS=("$@")
[[ ${#FLOODS[@]} -gt 0 ]] || FLOODS=(garbage forged sessions)
for f in "${FLOODS[@]}"; do
  [[ $f =~ ^(garbage|forged|sessions)$ ]] || {
    echo "floods: unknown flood $f (garbage, forged, sessions)" >&2
    exit 2
  }
done

log() { printf 'floods: %s\n' "$*" >&2; }
die() {
  printf 'floods: error: %s\n' "$*" >&2
  exit 1
}

# --- tools ---------------------------------------------------------------------------------------
scripts/install-deps.sh cmake nginx wrk curl openssl >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$NGINX" wrk curl openssl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "cargo build --release (ssogate, bench-tokens)"
cargo build --release --bin ssogate --example bench-tokens >&2
SSOGATE_BIN=${SSOGATE_BIN:-$TARGET_DIR/release/ssogate}
TOKENS_BIN=$TARGET_DIR/release/examples/bench-tokens
[[ -x $SSOGATE_BIN ]] || die "no ssogate binary at $SSOGATE_BIN"

# --- scratch directory, processes ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssogate-floods.XXXXXX")
chmod 755 "$WORK" # nginx workers drop to an unprivileged user when started as root
# ssogate watches the directories of its config and key files: logs go elsewhere.
SSO_DIR=$WORK/ssogate
LOGS=$WORK/logs
mkdir -p "$SSO_DIR" "$LOGS"
declare -A PID_OF=()
stop() { # stop NAME [SIGNAL]: SIGNAL (TERM), then KILL after 5 s; only processes this script started
  local name=$1 signal=${2:-TERM} pid i
  pid=${PID_OF[$name]:-}
  [[ -n $pid ]] || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
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
for v in APP SSO SSO_ADMIN; do pick_port "${v}_PORT"; done
wait_port() { # wait_port PORT NAME: until it accepts (10 s)
  local i
  for ((i = 0; i < 100; i++)); do
    port_in_use "$1" && return 0
    sleep 0.1
  done
  die "$2 does not listen on $1 (logs: $LOGS)"
}
start() { # start NAME COMMAND...: in the background, output to $LOGS/NAME.log
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  PID_OF[$name]=$!
}

# --- keys, config, targets -----------------------------------------------------------------------------
openssl rand -hex 32 | tr -d '\n' >"$SSO_DIR/session.key"
openssl rand -hex 32 | tr -d '\n' >"$SSO_DIR/hs256.secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/wrong.key" 2>/dev/null
openssl pkey -in "$WORK/rs256.key" -pubout -out "$SSO_DIR/rs256.pub.pem"

cat >"$SSO_DIR/ssogate.yaml" <<EOF
listen: 127.0.0.1:$SSO_PORT
admin_listen: 127.0.0.1:$SSO_ADMIN_PORT
threads: 2
upstream: http://127.0.0.1:$APP_PORT
trusted_proxies: [127.0.0.1/32]
session:
  secret_file: session.key
  secure: false
  cache_max_entries: $CACHE_ENTRIES
default_org: bench
organizations:
  bench:
    login_url: http://localhost:4000/sso/login
    accept_bearer: true
    max_token_age: 2h
    keys:
      - { alg: HS256, secret_file: hs256.secret }
      - { alg: RS256, public_key_file: rs256.pub.pem }
EOF
cat >"$WORK/app.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/app.pid;
error_log $LOGS/app.error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $WORK/app-body; proxy_temp_path $WORK/app-proxy;
  fastcgi_temp_path $WORK/app-fcgi; uwsgi_temp_path $WORK/app-uwsgi; scgi_temp_path $WORK/app-scgi;
  keepalive_requests 1000000;
  access_log off;
  server { listen 127.0.0.1:$APP_PORT; location / { default_type text/plain; return 200 'ok'; } }
}
EOF
start app "$NGINX" -p "$WORK" -e "$LOGS/app.error.log" -c "$WORK/app.conf"
# ssogate's log (one JSON line per request) goes to /dev/null: three million lines are not
# what is measured, and a file would grow with the flood.
"$SSOGATE_BIN" run --config "$SSO_DIR/ssogate.yaml" >/dev/null 2>"$LOGS/ssogate.stderr" &
PID_OF[ssogate]=$!
wait_port "$APP_PORT" app
wait_port "$SSO_PORT" ssogate
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SSO_ADMIN_PORT/readyz") == 200 ]] && break
  sleep 0.1
done
SSO_PID=${PID_OF[ssogate]}
BASE=http://127.0.0.1:$SSO_PORT
LEGIT_ADDR=203.0.113.7
LEGIT_LOGIN_ADDR=203.0.113.8

# --- measurements --------------------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$SSO_PID/status"; }
metric() { # metric NAME: its value (0 when absent)
  curl -s --max-time 5 "http://127.0.0.1:$SSO_ADMIN_PORT/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
# sampler FILE: every 0.5 s, "rss_kib limiter_addresses cache_entries", until stopped
sampler() {
  while kill -0 "$SSO_PID" 2>/dev/null; do
    local m
    m=$(curl -s --max-time 5 "http://127.0.0.1:$SSO_ADMIN_PORT/metrics")
    printf '%s %s %s\n' "$(rss_kib)" \
      "$(awk '$1 == "ssogate_rate_limit_addresses" { print $2 + 0 }' <<<"$m")" \
      "$(awk '$1 == "ssogate_session_cache_entries" { print $2 + 0 }' <<<"$m")" >>"$1"
    sleep 0.5
  done
}
column_max() { awk -v c="$1" '$c > m { m = $c } END { print m + 0 }' "$2"; }

# --- wrk scripts -----------------------------------------------------------------------------------------
# The flood: FLOOD_COUNT requests over the threads, each thread stopping after its share of
# answers; each request a credential never sent before, from client address
# 10.x.y.z number (request index mod FLOOD_ADDRESSES). Answers are counted by status.
cat >"$WORK/flood.lua" <<'EOF'
local kind = os.getenv("FLOOD_KIND")
local count = tonumber(os.getenv("FLOOD_COUNT"))
local addresses = tonumber(os.getenv("FLOOD_ADDRESSES") or "0")
local nthreads = tonumber(os.getenv("FLOOD_THREADS"))
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local per, first, sent, answered, lines, forged_head, forged_tail
statuses = {}
function init(args)
  per = math.floor(count / nthreads)
  first = id * per
  sent, answered = 0, 0
  if kind == "forged" then
    -- header.claims of a real RS256 token; the signature (342 characters, as RS256 with a
    -- 2048-bit key makes them) is the token's number and then filler: every token is
    -- distinct, parses, and fails verification.
    local sample = os.getenv("FORGED_SAMPLE")
    forged_head = sample:match("^([^.]+%.[^.]+)%.")
    forged_tail = string.rep("Qx7_", 84)
  elseif kind == "sessions" then
    lines = {}
    local i = 0
    for line in io.lines(os.getenv("FLOOD_LIST")) do
      if i >= first and i < first + per then lines[#lines + 1] = line end
      i = i + 1
    end
  end
end
local function address(n)
  local a = n % addresses
  return string.format("10.%d.%d.%d", math.floor(a / 65536) % 256, math.floor(a / 256) % 256, a % 256)
end
function request()
  local n = first + sent
  sent = sent + 1
  if kind == "garbage" then
    return wrk.format(nil, nil, {
      ["Authorization"] = string.format("Bearer garbage%d.%d.not-a-jwt", n, (n * 7919) % 1000003),
      ["X-Forwarded-For"] = address(n),
    })
  elseif kind == "forged" then
    return wrk.format(nil, nil, {
      ["Authorization"] = string.format("Bearer %s.%010d%s", forged_head, n, forged_tail),
      ["X-Forwarded-For"] = address(n),
    })
  else
    return wrk.format(nil, nil, { ["Cookie"] = lines[(sent - 1) % #lines + 1] })
  end
end
-- wrk's main thread sleeps for the whole -d duration whatever its threads do: each thread
-- leaves a mark when it has its answers, and the script interrupts wrk (SIGINT) once all have.
local marked = false
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if answered >= per and not marked then
    marked = true
    local mark = io.open(os.getenv("FLOOD_MARKS") .. "/" .. id, "w")
    mark:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\n", status, n)) end
end
EOF
# The legitimate client: its session cookie, from its own address; answers counted by status.
cat >"$WORK/legit.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
statuses = {}
function init(args)
  wrk.headers["Cookie"] = os.getenv("LEGIT_COOKIE")
  wrk.headers["X-Forwarded-For"] = os.getenv("LEGIT_ADDR")
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\n", status, n)) end
end
EOF
statuses_of() { # statuses_of FILE: "401:12 429:3" from wrk output
  awk '/^status / { printf "%s%s:%s", sep, $2, $3; sep = " " }' "$1"
}
count_of() { # count_of FILE STATUS_REGEX: answers with such statuses
  awk -v re="^($2)$" '/^status / && $2 ~ re { n += $3 } END { print n + 0 }' "$1"
}
socket_errors() { # socket_errors FILE
  awk '/Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$1"
}

# --- the legitimate client ---------------------------------------------------------------------------
tokens() { "$TOKENS_BIN" jwt "$@"; }
# One batch, so that every token has its own jti (bench-tokens numbers them within a batch):
# the first signs the legitimate client in, the rest are its logins during the floods.
LOGINS_PER_FLOOD=$((CAP * 5))
tokens HS256 "$SSO_DIR/hs256.secret" $((2 * LOGINS_PER_FLOOD + 1)) 7200 >"$WORK/logins.tokens"
LEGIT_TOKEN=$(head -n1 "$WORK/logins.tokens")
LEGIT_COOKIE=$(curl -s -o /dev/null -D - -H "X-Forwarded-For: $LEGIT_ADDR" "$BASE/_sso/jwt?jwt=$LEGIT_TOKEN" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(ssogate_session=[^;]*\).*/\1/p' | head -n1)
[[ -n $LEGIT_COOKIE ]] || die "/_sso/jwt set no session cookie (log: $LOGS/ssogate.stderr)"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $LEGIT_COOKIE" "$BASE/app") == 200 ]] ||
  die "the legitimate session is not served"
FORGED_SAMPLE=$(tokens RS256 "$WORK/wrong.key" 1 7200)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FORGED_SAMPLE" "$BASE/app") == 401 ]] ||
  die "a badly signed token is not refused"

# legit_start NAME FIRST: the cookie client (wrk) and the login loop (curl, from line FIRST of
# the tokens), each from its own address
legit_start() {
  local name=$1 first=$2
  LEGIT_COOKIE=$LEGIT_COOKIE LEGIT_ADDR=$LEGIT_ADDR \
    wrk -t1 -c2 -d"${CAP}s" -s "$WORK/legit.lua" "$BASE/app/legit" >"$LOGS/legit-$name.txt" 2>&1 &
  PID_OF[legit]=$!
  (
    while read -r token; do
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H "X-Forwarded-For: $LEGIT_LOGIN_ADDR" \
        "$BASE/_sso/jwt?jwt=$token" || echo 000
      sleep 0.2
    done < <(tail -n +"$first" "$WORK/logins.tokens" | head -n "$LOGINS_PER_FLOOD") >"$LOGS/logins-$name.txt"
  ) &
  PID_OF[logins]=$!
}
legit_stop() {
  stop legit INT # wrk prints its summary (and the Lua done()) on SIGINT
  stop logins
}

# --- one flood -------------------------------------------------------------------------------------------
FAILURES=()
REPORT=()
flood() { # flood NAME ADDRESSES [LIST]
  local name=$1 addresses=$2 list=${3:-}
  local out=$LOGS/flood-$name.txt samples=$LOGS/samples-$name.txt
  local threads=2 rss_before rss_after started seconds
  case $name in
    garbage) legit_start "$name" 2 ;;
    forged) legit_start "$name" $((2 + LOGINS_PER_FLOOD)) ;;
  esac
  sleep 1
  rss_before=$(rss_kib)
  : >"$samples"
  sampler "$samples" &
  PID_OF[sampler]=$!
  log "$name: $COUNT requests (${CONNECTIONS} connections, at most ${CAP}s)"
  local marks=$WORK/marks-$name
  mkdir -p "$marks"
  started=$(date +%s.%N)
  FLOOD_KIND=$name FLOOD_COUNT=$COUNT FLOOD_ADDRESSES=$addresses FLOOD_THREADS=$threads \
    FORGED_SAMPLE=$FORGED_SAMPLE FLOOD_LIST=$list FLOOD_MARKS=$marks \
    wrk -t"$threads" -c"$CONNECTIONS" -d"${CAP}s" --timeout 10s \
    -s "$WORK/flood.lua" "$BASE/app/page" >"$out" 2>&1 &
  PID_OF[flood]=$!
  # Until every wrk thread has its answers (or wrk ends by itself at CAP).
  while kill -0 "${PID_OF[flood]}" 2>/dev/null && (($(find "$marks" -type f | wc -l) < threads)); do
    sleep 0.2
  done
  stop flood INT # wrk prints its summary (and the Lua done()) on SIGINT
  seconds=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  [[ $name == sessions ]] || legit_stop
  # The bounds are read after the flood too (the sampler may have missed the last moments).
  local limiter_after cache_after
  limiter_after=$(metric ssogate_rate_limit_addresses)
  cache_after=$(metric ssogate_session_cache_entries)
  stop sampler
  rss_after=$(rss_kib)
  printf '%s %s %s\n' "$rss_after" "$limiter_after" "$cache_after" >>"$samples"

  local answered bad errors limiter_max cache_max rss_max
  answered=$(count_of "$out" '[0-9]+')
  errors=$(socket_errors "$out")
  limiter_max=$(column_max 2 "$samples")
  cache_max=$(column_max 3 "$samples")
  rss_max=$(column_max 1 "$samples")
  if [[ $name == sessions ]]; then
    bad=$((answered - $(count_of "$out" 200)))
  else
    bad=$((answered - $(count_of "$out" '401|429')))
  fi
  ((answered >= COUNT - COUNT / 100)) || REPORT+=("- $name: only $answered of $COUNT answered within ${CAP}s (CAP)")
  ((bad == 0)) || FAILURES+=("$name: $bad flood requests answered otherwise than refused ($(statuses_of "$out"))")
  ((limiter_max <= LIMITER_BOUND)) || FAILURES+=("$name: the limiter held $limiter_max addresses (bound $LIMITER_BOUND)")
  ((cache_max <= CACHE_ENTRIES)) || FAILURES+=("$name: the session cache held $cache_max sessions (bound $CACHE_ENTRIES)")

  local legit_line="-"
  if [[ $name != sessions ]]; then
    local legit_ok legit_all logins_ok logins_all
    legit_ok=$(count_of "$LOGS/legit-$name.txt" 200)
    legit_all=$(count_of "$LOGS/legit-$name.txt" '[0-9]+')
    logins_all=$(grep -c . "$LOGS/logins-$name.txt" || true)
    logins_ok=$(grep -c '^302$' "$LOGS/logins-$name.txt" || true)
    legit_line="$legit_ok/$legit_all requests 200, $logins_ok/$logins_all logins 302"
    ((legit_all > 0 && legit_ok == legit_all)) ||
      FAILURES+=("$name: the legitimate client got $(statuses_of "$LOGS/legit-$name.txt") for its requests")
    ((logins_all > 0 && logins_ok == logins_all)) ||
      FAILURES+=("$name: the legitimate logins got $(sort "$LOGS/logins-$name.txt" | uniq -c | tr -s ' \n' ' ')")
  fi
  ROWS+=("| $name | $answered | $(statuses_of "$out") | $errors | $seconds | $((rss_before / 1024)) | $((rss_max / 1024)) | $((rss_after / 1024)) | $limiter_max | $cache_max | $legit_line |")
  log "$name: $answered answered ($(statuses_of "$out")) in ${seconds}s, RSS $((rss_before / 1024)) -> $((rss_after / 1024)) MiB (peak $((rss_max / 1024))), limiter $limiter_max, cache $cache_max, legit: $legit_line"
}

# --- run ---------------------------------------------------------------------------------------------------
ROWS=()
RSS_START=$(rss_kib)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for f in "${FLOODS[@]}"; do
  # Addresses refused once are forgotten after 2 s: each flood starts without the last one's.
  sleep 3
  case $f in
    garbage) flood garbage "$COUNT" ;;
    forged) flood forged "$FORGED_ADDRESSES" ;;
    sessions)
      log "sessions: sealing $COUNT session cookies"
      "$TOKENS_BIN" cookies "$SSO_DIR/ssogate.yaml" bench "$COUNT" >"$WORK/sessions.cookies"
      flood sessions 1 "$WORK/sessions.cookies"
      ;;
  esac
done
kill -0 "$SSO_PID" 2>/dev/null || FAILURES+=("ssogate is gone (log: $LOGS/ssogate.stderr)")

report() {
  echo "# Floods"
  echo
  echo "Written by \`bench/floods.sh\` ($(date -u +%Y-%m-%dT%H:%MZ)): $COUNT requests per flood, $CONNECTIONS connections,"
  echo "ssogate with two workers, default rate limits (limiter bound $LIMITER_BOUND addresses), cache_max_entries $CACHE_ENTRIES;"
  echo "$(nproc) CPUs shared by wrk, ssogate and the upstream; load average before: $LOAD_BEFORE; RSS at start: $((RSS_START / 1024)) MiB."
  echo
  echo "- garbage: \`Authorization: Bearer garbageN...\`, each from a new client address"
  echo "- forged: RS256 tokens that parse (alg RS256, exp ahead) with a signature that does not verify, from $FORGED_ADDRESSES addresses in turn"
  echo "- sessions: distinct valid session cookies, each sent once"
  echo "- legitimate client (garbage, forged): its session cookie from $LEGIT_ADDR, and a fresh /_sso/jwt login five times a second from $LEGIT_LOGIN_ADDR"
  echo
  echo "| flood | answered | statuses | socket errors | s | RSS before MiB | peak MiB | after MiB | limiter addresses (max) | session cache (max) | legitimate client |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS[@]}"
  for line in "${REPORT[@]}"; do echo "$line"; done
  echo
  if [[ ${#FAILURES[@]} -eq 0 ]]; then
    echo "Verdict: pass."
  else
    echo "Verdict: FAIL"
    for f in "${FAILURES[@]}"; do echo "- $f"; done
  fi
}
report | tee "${OUT:-/dev/null}"
[[ ${#FAILURES[@]} -eq 0 ]] || exit 1

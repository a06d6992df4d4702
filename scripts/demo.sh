#!/usr/bin/env bash
# Runs ssogate (config.yaml) in front of the demo app, with the demo customer
# portal as the org's login page. Open http://localhost:8080 and sign in.
#
#   demo app (unmodified, reads headers)  http://127.0.0.1:3000
#   demo customer portal (flow A, B)      http://localhost:4000
#   ssogate proxy                         http://localhost:8080
#   ssogate admin (metrics, health)       http://localhost:9090
#
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh cmake

echo "==> building ssogate and the demo (release)"
cargo build --release --bin ssogate --example demo

target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-${CARGO_TARGET_DIR:-target}}

"$target_dir/release/examples/demo" &
demo_pid=$!
cleanup() {
  kill "$demo_pid" 2>/dev/null || true
  wait "$demo_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Wait until the app and the portal accept connections.
for port in 3000 4000; do
  for _ in $(seq 1 50); do
    if ! kill -0 "$demo_pid" 2>/dev/null; then
      echo "demo: the demo app exited (is port 3000 or 4000 already in use?)" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
done

cat <<'MSG'

  Open http://localhost:8080 in your browser.

  What you'll see:
   1. ssogate has no session for you, so it redirects to the customer portal's
      login page (http://localhost:4000/sso/dash?ssoCallback=...): flow A.
   2. Sign in there (prefilled: alice, groups readers,admins). The portal sends
      you back to ssogate's /_sso/callback with a signed JWT; ssogate checks it,
      sets its session cookie and redirects you to the page you asked for.
   3. The dashboard (an app with no login code) shows who you are from the
      X-Auth-Request-* headers ssogate injected, and every header it received.
      Try /_sso/whoami and "Log out" (then opening the dashboard again signs
      you in without a form: the portal still knows you).
   4. http://localhost:4000 shows flow B: the portal embeds the dashboard in an
      iframe through /_sso/jwt?jwt=<JWT>.
  Metrics: http://localhost:9090/metrics   Stop: Ctrl-C

MSG

# In the foreground, so its logs are visible; the trap stops the demo after it.
"$target_dir/release/ssogate" --config config.yaml --log-format text

#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (warnings are errors) and all
# test targets. Exits non-zero when anything fails. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# cmake builds pingora's zlib-ng; redis-server, chromium, openssl and keytool
# are used by the replay-store, browser and key-material test suites; podman,
# runc and musl-tools by the container image test (tests/image.rs).
scripts/install-deps.sh cmake redis-server chromium openssl default-jre-headless podman runc musl-tools
# The Python and Node packages of tests/deploy.rs and tests/integrations.rs,
# cached outside the clone (exit 3: a registry is unreachable, those tests
# say so and skip).
scripts/install-test-tools.sh || [[ $? -eq 3 ]]

if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
  echo "==> target directory: $CARGO_TARGET_DIR"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

echo "==> cargo test --all-targets"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: run every suite so the summary below is complete.
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?

echo
echo "==> test summary"
awk '
  /^ *Running / { suite = ($2 == "unittests") ? $2 " " $3 : $2 }
  /^test result:/ {
    printf "  %-60s %s\n", suite, $0
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) passed += $i
      if ($(i + 1) ~ /^failed/) failed += $i
      if ($(i + 1) ~ /^ignored/) ignored += $i
    }
  }
  END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }
' "$log"
if grep -q ' \.\.\. FAILED$' "$log"; then
  echo "  failed tests:"
  grep ' \.\.\. FAILED$' "$log" | sed 's/^test /    /; s/ \.\.\. FAILED$//' | sort -u
fi

if [[ $status -ne 0 ]]; then
  echo "==> FAILED (cargo test exited with $status)" >&2
  exit "$status"
fi
echo "==> all checks passed"

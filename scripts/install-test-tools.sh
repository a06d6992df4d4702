#!/usr/bin/env bash
# Installs the Python and Node packages some tests run, into a cache outside
# the clone, only when missing or when the pinned versions changed:
#
#   $SSOGATE_TOOLS_DIR   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ssogate-test-tools)
#     venv/                a Python venv: kubernetes-validate (tests/deploy.rs) and
#                          examples/integrations/python/requirements.txt (tests/integrations.rs)
#     node/node_modules/   examples/integrations/node/package-lock.json (tests/integrations.rs)
#
#   scripts/install-test-tools.sh [python] [node]    # default: both
#
# Exit status: 0 ready; 3 a package registry could not be reached (the tests
# that need it are skipped and say why); 1 anything else.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${SSOGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ssogate-test-tools}
mkdir -p "$tools"

# Pinned here, read by tests/deploy.rs through the venv.
kubernetes_validate="kubernetes-validate==1.37.0"

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(python node)

# Tests may call this concurrently: one installer at a time.
exec 9>"$tools/.lock"
flock 9

# Does an installer's output say the registry was out of reach?
unreachable() {
  # pip: connection errors, or no version at all of a package that exists.
  grep -Eqi 'from versions: none|NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|Max retries exceeded|Could not fetch URL|ConnectTimeout|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ECONNRESET|network request to .* failed' "$1"
}

fingerprint() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

install_python() {
  local req=$repo/examples/integrations/python/requirements.txt
  local want
  want=$(printf '%s\n%s\n' "$kubernetes_validate" "$(fingerprint "$req")" | sha256sum | cut -d' ' -f1)
  if [[ -x $tools/venv/bin/python && $(cat "$tools/venv/.stamp" 2>/dev/null) == "$want" ]]; then
    echo "install-test-tools: python venv ready ($tools/venv)"
    return 0
  fi
  echo "install-test-tools: creating $tools/venv ($kubernetes_validate, PyJWT, cryptography)"
  if ! python3 -m venv --clear "$tools/venv" 2>/dev/null; then
    # Debian's own python3 needs its venv module as a package.
    "$repo/scripts/install-deps.sh" python3-venv
    python3 -m venv --clear "$tools/venv"
  fi
  local log
  log=$(mktemp)
  if ! "$tools/venv/bin/python" -m pip install --disable-pip-version-check \
    "$kubernetes_validate" -r "$req" >"$log" 2>&1; then
    cat "$log" >&2
    if unreachable "$log"; then
      rm -f "$log"
      echo "install-test-tools: the Python package registry is unreachable" >&2
      return 3
    fi
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "$want" >"$tools/venv/.stamp"
}

install_node() {
  local src=$repo/examples/integrations/node
  local want
  want=$(fingerprint "$src/package.json" "$src/package-lock.json")
  if [[ -d $tools/node/node_modules && $(cat "$tools/node/.stamp" 2>/dev/null) == "$want" ]]; then
    echo "install-test-tools: node modules ready ($tools/node/node_modules)"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-tools: npm is missing (install Node.js 18+ with npm)" >&2
    return 1
  fi
  echo "install-test-tools: npm ci in $tools/node (jsonwebtoken)"
  rm -rf "$tools/node"
  mkdir -p "$tools/node"
  cp "$src/package.json" "$src/package-lock.json" "$tools/node/"
  local log
  log=$(mktemp)
  if ! (cd "$tools/node" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    if unreachable "$log"; then
      rm -f "$log"
      echo "install-test-tools: the npm registry is unreachable" >&2
      return 3
    fi
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "$want" >"$tools/node/.stamp"
}

status=0
for part in "${parts[@]}"; do
  rc=0
  case $part in
    python) install_python || rc=$? ;;
    node) install_node || rc=$? ;;
    *)
      echo "install-test-tools: unknown part $part (python, node)" >&2
      exit 1
      ;;
  esac
  if [[ $rc -eq 1 || ($rc -ne 0 && $status -eq 0) ]]; then
    status=$rc
  fi
done
# The last line tells callers (the tests) where the tools are.
[[ $status -ne 0 ]] || echo "SSOGATE_TOOLS_DIR=$tools"
exit "$status"

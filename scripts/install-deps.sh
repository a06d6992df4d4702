#!/usr/bin/env bash
# Installs the system packages ssogate's build, demo and tests need, only the
# ones that are missing, on a Debian/Ubuntu machine that already has Rust.
#
#   scripts/install-deps.sh                 # the default set: cmake redis-server chromium openssl default-jre-headless
#   scripts/install-deps.sh cmake           # only what building needs
#
#   cmake         pingora builds zlib-ng with it
#   redis-server  the tests of the redis replay_store
#   chromium      the browser tests (headless)
#   openssl       the key-material tests generate keys, certificates and .p12 files
#   default-jre-headless  keytool, for the Java truststore test (any JRE will do)
#   podman runc musl-tools  the container image test (scripts/build-image.sh)
set -euo pipefail

if [[ $# -gt 0 ]]; then
  wanted=("$@")
else
  wanted=(cmake redis-server chromium openssl default-jre-headless)
fi

# A package counts as present when dpkg has it or its command is on PATH.
is_present() {
  local pkg=$1
  if command -v dpkg-query >/dev/null 2>&1 &&
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    return 0
  fi
  case $pkg in
    chromium)
      command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
        command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1
      ;;
    # any Java runtime will do: the tests only need its keytool
    default-jre-headless) command -v keytool >/dev/null 2>&1 ;;
    *) command -v "$pkg" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in "${wanted[@]}"; do
  is_present "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: already installed: ${wanted[*]}"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
  exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

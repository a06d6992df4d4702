#!/usr/bin/env bash
# Builds ssogate's container image with podman from a static binary compiled
# here (no registry needed: the image is FROM scratch):
#
#   scripts/build-image.sh [TAG]        # default TAG: localhost/ssogate:<version>
#
# 1. cargo build --release --target x86_64-unknown-linux-musl (musl-tools
#    provides the C compiler pingora's zlib-ng build uses). The build is kept
#    in $SSOGATE_MUSL_TARGET_DIR, default $CARGO_TARGET_DIR/musl-image (or
#    target/musl-image), so a warm rebuild takes seconds.
# 2. podman build -f deploy/Containerfile.local, on a context holding only
#    the binary.
#
# Needs root (rootful podman) and installs what is missing (podman, runc,
# musl-tools, cmake) through scripts/install-deps.sh. Podman is set up in a
# temporary CONTAINERS_CONF (runc, no default ulimits), never in /etc; pass
# your own CONTAINERS_CONF to override. Prints the image's tag and size.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tag=${1:-localhost/ssogate:$version}
target=x86_64-unknown-linux-musl

if [[ $(id -u) -ne 0 ]]; then
  echo "build-image: needs root (rootful podman)" >&2
  exit 1
fi
scripts/install-deps.sh cmake musl-tools podman runc

musl_dir=${SSOGATE_MUSL_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}/musl-image}
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target"
fi
echo "build-image: cargo build --release --target $target (in $musl_dir)"
CARGO_TARGET_DIR=$musl_dir cargo build --release --locked --target "$target" --bin ssogate
binary=$musl_dir/$target/release/ssogate
# A static binary has no program interpreter (ld.so) to load.
if LC_ALL=C readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  echo "build-image: $binary is not a static binary" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z ${CONTAINERS_CONF:-} ]]; then
  # This VM may not let podman set rlimits, and crun may be absent.
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$work/containers.conf"
  export CONTAINERS_CONF=$work/containers.conf
fi
mkdir "$work/context"
cp "$binary" "$work/context/ssogate"
strip "$work/context/ssogate" 2>/dev/null || true

echo "build-image: podman build -f deploy/Containerfile.local -t $tag"
podman build --quiet --file deploy/Containerfile.local --tag "$tag" "$work/context" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "build-image: built $tag ($size bytes, $((size / 1024 / 1024)) MiB)"

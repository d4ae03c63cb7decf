#!/usr/bin/env bash
# Builds the base image GridMR's containers start from, with no registry to
# pull from: debootstrap a minimal Debian into a folder, then `docker import`
# it. Does nothing when the image exists (pass --force to rebuild).
#
#   deploy/docker/build-base.sh [IMAGE]        # default gridmr-base:bookworm
#
# SUITE (bookworm) and MIRROR (http://deb.debian.org/debian) can be set.
# Needs root (debootstrap) and installs debootstrap if it is missing.
set -euo pipefail
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
image=${1:-gridmr-base:bookworm}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image exists"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# minbase: the required packages and apt; python3 runs the original's job
# scripts, ca-certificates lets `script_url` reach https hosts.
debootstrap --variant=minbase --include=python3,ca-certificates "$suite" "$root" "$mirror" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/*
tar -C "$root" --numeric-owner -c . | docker import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes)"

#!/usr/bin/env bash
# Builds the gridmr image from a prebuilt binary (default: a release build
# of this checkout), on the locally built base image.
#
#   deploy/docker/build-image.sh [BINARY] [IMAGE]     # default gridmr:latest
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
binary=${1:-}
image=${2:-gridmr:latest}
if [ -z "$binary" ]; then
  cargo build --release --quiet --bin gridmr --manifest-path "$top/Cargo.toml"
  binary="$top/target/release/gridmr"
fi
"$here/build-base.sh" gridmr-base:bookworm >/dev/null
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$context/"
# Debug symbols stay out of the image.
strip -o "$context/gridmr" "$binary" 2>/dev/null || cp "$binary" "$context/gridmr"
docker build --quiet -t "$image" "$context" >/dev/null
echo "built $image"

#!/usr/bin/env bash
# End-to-end comparison: direct, weft-proxy, the SwiftNIO floor, nginx and HAProxy under the same load, in one run.
# Installs what it needs, builds weft-proxy as deployed (scripts/build-release.sh), then runs Benchmarks/compare.py.
#   Benchmarks/run.sh [--duration 10] [--connections 50] [--paced-rps 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
missing=()
for package in wrk nginx haproxy nghttp2-client util-linux; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
scripts/build-release.sh weft-proxy weft
# The reference rows: the cheapest proxies SwiftNIO allows (Benchmarks/Benchmarks/NIOFloor): HTTP/1.1,
# HTTP/2 with a stream channel per stream, and HTTP/2 relayed frame by frame.
scripts/build-release.sh --package-path Benchmarks --scratch-path Benchmarks/.build nio-floor
exec python3 Benchmarks/compare.py --weft .build-release/release/weft-proxy --weft-cli .build-release/release/weft \
  --nio-floor Benchmarks/.build/release/nio-floor "$@"

#!/usr/bin/env bash
# End-to-end comparison: direct, weft-proxy, the SwiftNIO floor, nginx and HAProxy under the same load, in one run.
# Installs what it needs, builds weft-proxy in release mode, then runs Benchmarks/compare.py.
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
swift build -c release --static-swift-stdlib --product weft-proxy --scratch-path .build-release
swift build -c release --static-swift-stdlib --product weft --scratch-path .build-release
# The reference rows: the cheapest proxies SwiftNIO allows (Benchmarks/Benchmarks/NIOFloor): HTTP/1.1,
# HTTP/2 with a stream channel per stream, and HTTP/2 relayed frame by frame.
(cd Benchmarks && swift build -c release --static-swift-stdlib --product nio-floor)
exec python3 Benchmarks/compare.py --weft .build-release/release/weft-proxy --weft-cli .build-release/release/weft \
  --nio-floor Benchmarks/.build/release/nio-floor "$@"

#!/usr/bin/env bash
# Runs every test: unit tests and integration tests with real peers (curl, Python http.server,
# websockets) against the real weft-proxy binary. Sets up what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build
swift test "$@"

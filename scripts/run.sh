#!/usr/bin/env bash
# Builds Weft and runs the example mesh (config/mesh.yaml) on this machine: the controller, and
# each workload's app with its own sidecar proxy. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build --product weft-proxy
swift build --product weft
echo "Starting the mesh in config/mesh.yaml. The commands it prints use weft: in another terminal,"
echo "  export PATH=$PWD/.build/debug:\$PATH"
exec .build/debug/weft up -f config/mesh.yaml "$@"

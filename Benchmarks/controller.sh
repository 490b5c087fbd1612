#!/usr/bin/env bash
# The control plane under N real proxies: convergence, push propagation, controller RSS/CPU.
#   Benchmarks/controller.sh [--proxies 20] [--workloads 50] [--edits 10]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
scripts/build-release.sh weft-proxy weft
exec python3 Benchmarks/controller.py --weft .build-release/release/weft --proxy .build-release/release/weft-proxy "$@"

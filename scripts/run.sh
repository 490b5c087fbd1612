#!/usr/bin/env bash
# Builds Weft and runs the emojivoto demo (config/demo/emojivoto.yaml) on this machine: the
# controller, and each workload's app with its own sidecar proxy. Ctrl-C stops everything.
# Another mesh file: scripts/run.sh -f config/mesh.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build --product weft-proxy
swift build --product weft
swift build --product emojivoto
file=config/demo/emojivoto.yaml
if [ "${1:-}" = "-f" ] && [ -n "${2:-}" ]; then file=$2; shift 2; fi
if [ "$file" != config/demo/emojivoto.yaml ]; then
  echo "Starting the mesh in $file. In another terminal: export PATH=$PWD/.build/debug:\$PATH, then the commands it prints."
  exec .build/debug/weft up -f "$file" "$@"
fi
cat <<TOUR
Starting the emojivoto demo ($file). In another terminal:

  export PATH=$PWD/.build/debug:\$PATH
  weft stat deploy -n emojivoto                          # web, voting, emoji below 100%: but which one is broken?
  weft stat deploy -n emojivoto --from deploy/web        # web → voting fails, web → emoji is fine
  weft stat deploy -n emojivoto --to deploy/emoji        # emoji is fine for web, fails for voting
  weft tap deploy/voting -n emojivoto --to deploy/emoji  # :status=500 on emoji's old /api/find
  weft diagnose -n emojivoto                             # all of the above in one command
  Fix: in $file, make voting's command "emojivoto voting --emoji-api grpc": weft up restarts it.

TOUR
exec .build/debug/weft up -f "$file" "$@"

#!/usr/bin/env bash
# Builds Weft and runs a sidecar proxy (config/proxy.yaml) in front of a demo HTTP app on
# 127.0.0.1:8080. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build --product weft-proxy
swift build --product weft

python3 -u Tests/IntegrationTests/Fixtures/upstream.py 8080 >/tmp/weft-demo-app.log 2>&1 &
app=$!
trap 'kill $app $proxy 2>/dev/null || true' EXIT INT TERM
.build/debug/weft-proxy --config config/proxy.yaml &
proxy=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:4191/ready >/dev/null 2>&1 && break; sleep 0.1; done

cat <<'TOUR'

Weft proxy is up: inbound 127.0.0.1:4143 → demo app 127.0.0.1:8080, outbound 127.0.0.1:4140,
admin and metrics 127.0.0.1:4191, tap 127.0.0.1:4190. Try:

  curl -i http://127.0.0.1:4143/echo                      # inbound, through the filter chain to the app
  curl -s http://127.0.0.1:4140/users/42 -H 'Host: users' # outbound route 'user-by-id': the app sees x-user-id: 42
  curl -i http://127.0.0.1:4140/ -H 'Host: 127.0.0.1:1'    # upstream refuses: 502 with weft-proxy-error
  curl -s http://127.0.0.1:4191/config                    # the config in force and its version
  curl -s http://127.0.0.1:4191/metrics | grep ^response_total   # responses by status and classification
  .build/debug/weft tap -o wide                            # live requests (in another terminal), Ctrl-C to stop
  kill -HUP <pid> or edit config/proxy.yaml                # reload; a bad edit is rejected, the old config stays

Ctrl-C to stop.
TOUR
wait $proxy

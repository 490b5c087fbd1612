#!/usr/bin/env bash
# Installs what building and testing Weft needs on a fresh Debian machine, only when missing.
set -euo pipefail

apt_packages=(libpcre2-dev curl python3 python3-pip nghttp2-client nghttp2-server iproute2 nginx openssl prometheus netcat-openbsd)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Test peers nobody here wrote: websockets (client and server) and grpcio (gRPC client and server).
for module in websockets grpc; do
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    package=$module; [ "$module" = grpc ] && package=grpcio
    echo "setup: installing the Python $package package"
    python3 -m pip install -q "$package" 2>/dev/null || python3 -m pip install -q --break-system-packages "$package"
  fi
done

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected at /opt/swift/usr/bin)"; exit 1; }

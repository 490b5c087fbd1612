#!/usr/bin/env bash
# Regenerates the Swift code for Protos/ (committed; CI never runs this).
# Needs protoc (Debian protobuf-compiler); builds the two plugins from the package's own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
swift build --product protoc-gen-swift
swift build --product protoc-gen-grpc-swift-2
bin=$(swift build --show-bin-path)
generate() { # proto file, output directory
  mkdir -p "$2"
  protoc --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" -I Protos \
    --swift_opt=Visibility=Public --swift_out="$2" \
    --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true \
    --grpc-swift-2_out="$2" "$1"
  echo "generated $1 into $2"
}
generate weft/tap/v1/tap.proto Sources/WeftTapAPI/Generated
generate weft/controller/v1/config.proto Sources/WeftControllerAPI/Generated
generate emojivoto/v1/emojivoto.proto Sources/EmojivotoAPI/Generated

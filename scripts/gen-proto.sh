#!/usr/bin/env bash
# Regenerates gen/ from proto/. Needs protoc (Debian: protobuf-compiler) and the
# plugins: go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#          go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
#          go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
rm -rf gen && mkdir -p gen
protoc -I proto -I /usr/include \
  --go_out=gen --go_opt=paths=source_relative \
  --go-grpc_out=gen --go-grpc_opt=paths=source_relative \
  --connect-go_out=gen --connect-go_opt=paths=source_relative \
  proto/abacus/v1/*.proto

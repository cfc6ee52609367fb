#!/bin/sh
# Regenerates connect/proto/connectv1's Go code from connect.proto.
#
# Needs protoc (Debian: apt-get install protobuf-compiler). protoc-gen-go is
# built from the module cache at the version go.mod pins; protoc-gen-go-grpc
# is installed at a pinned version into a temporary GOBIN.
set -eu
cd "$(dirname "$0")/.."

PROTOC=${PROTOC:-protoc}
GRPC_GEN_VERSION=v1.6.2

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$GRPC_GEN_VERSION

PATH=$bin:$PATH "$PROTOC" \
	--proto_path=connect/proto/connectv1 \
	--go_out=connect/proto/connectv1 --go_opt=paths=source_relative \
	--go-grpc_out=connect/proto/connectv1 --go-grpc_opt=paths=source_relative \
	connect/proto/connectv1/connect.proto

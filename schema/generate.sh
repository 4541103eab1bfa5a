#!/usr/bin/env bash
# Regenerates the Go code in schema/roomhookv1 from schema/proto.
#
#   ./schema/generate.sh        (or: go generate ./schema)
#
# Needs only Go. buf and protoc-gen-go are installed with `go install` at the
# pinned versions when missing or different; nothing is fetched from the Buf
# Schema Registry. LiveKit's .proto files come from the github.com/livekit/protocol
# version that go.mod requires, so the generated code imports exactly the
# livekit Go types this module builds against.
set -euo pipefail

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12

cd "$(dirname "$0")"

gobin="$(go env GOBIN)"
if [ -z "$gobin" ]; then
	gobin="$(go env GOPATH)/bin"
fi
export PATH="$gobin:$PATH"

if [ "$(buf --version 2>/dev/null || true)" != "${BUF_VERSION#v}" ]; then
	echo "installing buf ${BUF_VERSION}" >&2
	go install "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}"
fi
if [ "$(protoc-gen-go --version 2>/dev/null || true)" != "protoc-gen-go ${PROTOC_GEN_GO_VERSION}" ]; then
	echo "installing protoc-gen-go ${PROTOC_GEN_GO_VERSION}" >&2
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi

livekit="$(go list -m -f '{{.Dir}}' github.com/livekit/protocol)/protobufs"
if [ ! -f "$livekit/livekit_models.proto" ]; then
	echo "generate.sh: $livekit/livekit_models.proto not found (go mod download github.com/livekit/protocol)" >&2
	exit 1
fi

# buf modules must live under one directory, and the module cache is read-only,
# so both roots are copied into a throw-away workspace. Only our own files are
# generated (--path); livekit's are there to resolve imports.
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" && rm -rf "$work"' EXIT
cp -R proto "$work/roomhook"
mkdir "$work/livekit"
cp -R "$livekit/." "$work/livekit/"
cat >"$work/buf.yaml" <<'YAML'
version: v2
modules:
  - path: roomhook
  - path: livekit
YAML

# Generated files are replaced wholesale, so a .proto that was removed leaves
# no stale code; roomhookv1/doc.go is hand-written and stays.
rm -f roomhookv1/*.pb.go
buf generate "$work" --template buf.gen.yaml --path "$work/roomhook/roomhook"

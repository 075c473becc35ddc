#!/usr/bin/env bash
# Checks that the Go code generated from proto/ (committed under proto/gen/go)
# is up to date with the schemas, and lints the schemas with buf.
#
#   bash scripts/proto-check.sh          # check: exit 1 if generated code is stale
#   bash scripts/proto-check.sh --write  # regenerate proto/gen/go in place
#
# Tools come from the Go module proxy only (pinned below, built and cached by
# `go run`); buf uses its built-in well-known types and no BSR plugin, so no
# other network is needed.
set -euo pipefail

BUF_VERSION=v1.75.0
# Must equal the version of google.golang.org/protobuf in go.mod (the runtime
# the generated code is compiled against) and the one in proto/buf.gen.yaml.
PROTOC_GEN_GO_VERSION=v1.36.12

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

buf() { go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}" "$@"; }

mod_version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
if [[ "$mod_version" != "$PROTOC_GEN_GO_VERSION" ]]; then
	echo "proto-check: go.mod has google.golang.org/protobuf $mod_version but protoc-gen-go is pinned to $PROTOC_GEN_GO_VERSION;" >&2
	echo "  update PROTOC_GEN_GO_VERSION in scripts/proto-check.sh and the plugin in proto/buf.gen.yaml, then run: bash scripts/proto-check.sh --write" >&2
	exit 1
fi
if ! grep -q "protoc-gen-go@${PROTOC_GEN_GO_VERSION}\"" proto/buf.gen.yaml; then
	echo "proto-check: proto/buf.gen.yaml does not pin protoc-gen-go@${PROTOC_GEN_GO_VERSION}" >&2
	exit 1
fi

if [[ "${1:-}" == "--write" ]]; then
	(cd proto && buf generate)
	echo "proto-check: regenerated proto/gen/go"
	exit 0
fi

(cd proto && buf lint)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd proto && buf generate --output "$tmp")

if ! diff -ru proto/gen/go "$tmp/gen/go" >"$tmp/diff" 2>&1; then
	cat "$tmp/diff" >&2
	echo >&2
	echo "proto-check: FAIL: proto/gen/go is stale (differs from what proto/*.proto generates)." >&2
	echo "  Regenerate with: bash scripts/proto-check.sh --write   (and commit proto/gen/go)" >&2
	exit 1
fi
echo "proto-check: OK (buf lint clean, proto/gen/go up to date)"

#!/usr/bin/env bash
# Builds the release files offline: archives for linux/amd64, linux/arm64,
# darwin/arm64 and windows/amd64 with checksums, and .deb and .rpm packages
# for Linux, with GoReleaser and its nFPM packager (.goreleaser.yaml).
#
#   scripts/package.sh                   results in dist/
#   PACKAGE_OUT=/tmp/rel scripts/package.sh
#   PACKAGE_TARGET=linux/amd64 scripts/package.sh   one target only (CI)
#
# GoReleaser comes from the Go module proxy the first time, into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
GORELEASER_VERSION=v2.15.1
tools="$PWD/.tools"
if [ ! -x "$tools/goreleaser" ] || ! "$tools/goreleaser" --version 2>/dev/null | grep -q "${GORELEASER_VERSION#v}"; then
  echo "package.sh: installing GoReleaser $GORELEASER_VERSION into .tools/" >&2
  GOBIN="$tools" go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
fi
args=(release --snapshot --clean --skip=publish,announce,sign)
if [ -n "${PACKAGE_TARGET:-}" ]; then
  # One target: the same recipe with its build matrix cut to it.
  mkdir -p .tools
  sed -e "s#^    goos: .*#    goos: [${PACKAGE_TARGET%/*}]#" -e "s#^    goarch: .*#    goarch: [${PACKAGE_TARGET#*/}]#" \
    .goreleaser.yaml > .tools/goreleaser-target.yaml
  args+=(--config .tools/goreleaser-target.yaml)
fi
"$tools/goreleaser" "${args[@]}"
out="${PACKAGE_OUT:-dist}"
if [ "$out" != dist ]; then
  mkdir -p "$out"
  cp dist/*.tar.gz dist/*.zip dist/*.deb dist/*.rpm dist/checksums.txt "$out"/ 2>/dev/null || true
fi
ls -1 "$out" | grep -E '\.(tar\.gz|zip|deb|rpm|txt)$' >&2

#!/bin/sh
# Makes what the packages hold beside the binary: shell completions and
# man pages, from the command declarations (the same as --help).
set -eu
cd "$(dirname "$0")/.."
rm -rf build
mkdir -p build/completions build/man
go run . completion bash > build/completions/mailferry.bash
go run . completion zsh > build/completions/_mailferry
go run . completion fish > build/completions/mailferry.fish
go run . man build/man >/dev/null
gzip -9n build/man/*.1
# The systemd units as the package installs them: the binary in /usr/bin.
mkdir -p build/systemd
for f in examples/systemd/*; do
  sed 's#/usr/local/bin/mailferry#/usr/bin/mailferry#g' "$f" > "build/systemd/$(basename "$f")"
done

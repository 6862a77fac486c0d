#!/usr/bin/env bash
# Runs every test of mailferry: the README's test command, and what CI runs.
#
# On Debian, as root, it first installs what the tests need (Dovecot's IMAP
# and POP3 servers), so a fresh machine runs everything. Tests that still
# lack Dovecot or the message corpus (../shared/corpus) say so and skip,
# except with CI=true, where a missing server or corpus fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v dovecot >/dev/null 2>&1 || need_pkgs+=(dovecot-imapd dovecot-pop3d)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# Tools people migrate from: tests run them against the test Dovecot to
# make real trees.
command -v mbsync >/dev/null 2>&1 || need_pkgs+=(isync)
command -v offlineimap >/dev/null 2>&1 || need_pkgs+=(offlineimap3)
command -v getmail >/dev/null 2>&1 || need_pkgs+=(getmail6)
# systemd-analyze checks the example units.
command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # The packages' own service is not wanted (the tests start their own
    # Dovecot on loopback); in containers policy-rc.d already stops it.
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "test.sh: ${need_pkgs[*]} missing and cannot be installed here (not root, or no apt-get); tests that need them will skip, or fail with CI=true" >&2
  fi
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# The library packages once more under the race detector (about a minute
# and a half): their connections, read-ahead and planner are goroutines
# sharing state. The command's own tests run the built binary, which the
# detector would not see into.
go test -race -count=1 -timeout 20m ./plan ./state ./store ./source/... ./sink/... ./internal/... | { grep -v -e '^ok' -e 'no test files' || true; }
# The benchmark runs as a smoke test here (500 messages, once, mailferry
# alone; 100 of them through the 20 ms latency proxy): it fails only if a
# run loses or duplicates messages, never on timing. bench/run.sh is the
# full benchmark.
export MAILFERRY_BENCH_N="${MAILFERRY_BENCH_N:-500}" MAILFERRY_BENCH_RUNS="${MAILFERRY_BENCH_RUNS:-1}" MAILFERRY_BENCH_PEERS="${MAILFERRY_BENCH_PEERS:-0}"
export MAILFERRY_BENCH_LATENCY_N="${MAILFERRY_BENCH_LATENCY_N:-100}" MAILFERRY_BENCH_WATCH_N="${MAILFERRY_BENCH_WATCH_N:-20}" MAILFERRY_BENCH_WAN_N="${MAILFERRY_BENCH_WAN_N:-200}"
# One line per test as it ends (go test alone prints a package only when
# all of it is done), the whole output of any test that fails.
go build -o /tmp/mailferry-testprogress.$$ ./scripts/testprogress
trap 'rm -f /tmp/mailferry-testprogress.$$' EXIT
go test -json -count=1 -timeout 60m "$@" ./... | /tmp/mailferry-testprogress.$$

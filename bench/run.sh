#!/usr/bin/env bash
# The benchmark: mailferry beside mbsync, OfflineIMAP and getmail, and the
# protocol limits, on one generated corpus in one throwaway Dovecot, on
# loopback. Prints a table (and writes it to bench/results.md).
#
#   bench/run.sh                 5,000 messages, median of 3 runs
#   N=50000 RUNS=1 bench/run.sh  the scaling run
#   IMAPSYNC=/path/to/imapsync bench/run.sh   imapsync too (the script from
#                                github.com/imapsync/imapsync; not vendored)
#
# On Debian as root it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v dovecot >/dev/null || need+=(dovecot-imapd dovecot-pop3d)
command -v mbsync >/dev/null || need+=(isync)
command -v offlineimap >/dev/null || need+=(offlineimap3)
command -v getmail >/dev/null || need+=(getmail6)
[ -x /usr/bin/time ] || need+=(time)
if [ -n "${IMAPSYNC:-}" ] && ! perl -c "$IMAPSYNC" >/dev/null 2>&1; then
  # The modules imapsync's INSTALL.d/INSTALL.Debian.txt names, and the
  # few more it asks for when they are missing.
  need+=(libauthen-ntlm-perl libclass-load-perl libcrypt-openssl-rsa-perl libdigest-hmac-perl
    libencode-imaputf7-perl libfile-copy-recursive-perl libfile-tail-perl libio-compress-perl
    libio-socket-inet6-perl libio-socket-ssl-perl libio-tee-perl libmail-imapclient-perl
    libmodule-implementation-perl libmodule-runtime-perl libmodule-scandeps-perl libpackage-stash-perl
    libpackage-stash-xs-perl libreadonly-perl libterm-readkey-perl libunicode-string-perl liburi-perl
    libsys-meminfo-perl libregexp-common-perl libjson-webtoken-perl libdata-uniqid-perl
    libproc-processtable-perl libnet-dns-perl libhtml-parser-perl libcgi-pm-perl libjson-perl)
fi
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# ext4 without a journal (the project's VM has one) steps over each inode
# freed in the last five minutes, one by one, whenever it creates a file
# (recently_deleted in fs/ext4/ialloc.c): a run begun within five minutes
# of the last one's clean-up, a quarter of a million files, paid up to
# three times the CPU per delivery (perf: find_inode_bit). Wait it out.
tmp="${TMPDIR:-/tmp}"
stamp="$tmp/mailferry-bench.done"
dev="$(basename "$(findmnt -no SOURCE -T "$tmp" 2>/dev/null || echo none)")"
if [ -d "/proc/fs/ext4/$dev" ] && ! compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null && [ -f "$stamp" ]; then
  left=$(( $(stat -c %Y "$stamp") + 300 - $(date +%s) ))
  if [ "$left" -gt 0 ]; then
    echo "waiting ${left}s: $tmp is ext4 without a journal, and the last run's files were deleted less than five minutes ago"
    sleep "$left"
  fi
fi
trap 'touch "$stamp"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), $(dovecot --version 2>/dev/null | cut -d' ' -f1), $(date -u +%Y-%m-%d)"
MAILFERRY_BENCH_N="${N:-5000}" MAILFERRY_BENCH_RUNS="${RUNS:-3}" MAILFERRY_BENCH_PEERS="${PEERS:-1}" \
MAILFERRY_BENCH_OUT="$PWD/bench/results.md" IMAPSYNC="${IMAPSYNC:+$(realpath "$IMAPSYNC")}" \
  go test -count=1 -run 'TestBenchmark|TestWatchLatency|TestWAN' -v -timeout 90m ./bench | grep -v '^        [A-Z][a-z][a-z] [0-9]'

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// TestIMAPNamesNotModifiedUTF7: a server that lists "R&D" with a bare '&'
// and a raw 8-bit "é" beside a proper "&AOk-" (real servers do; Dovecot
// does not, so a proxy rewrites its answers) no longer fails the account:
// every other folder is copied once, "é" once and not twice, and each
// folder whose name cannot be said is failed by name, exit 3.
func TestIMAPNamesNotModifiedUTF7(t *testing.T) {
	srv, from, to := migrationPair(t)
	var fx []sourcetest.Fixture
	for i, folder := range []string{"INBOX", "INBOX", "Archive", "R&D", "é", "Xraw"} {
		fx = append(fx, fixture(folder, i, []string{`\Seen`}))
	}
	sinktest.Put(t, imapStore(t, srv, from), fx)
	p := faultproxy.Start(t, dovecottest.Addr(srv.IMAPPort), &faultproxy.Proxy{
		Rewrite: func(fromServer bool, b []byte) []byte {
			if !fromServer {
				return b
			}
			b = bytes.ReplaceAll(b, []byte("R&-D"), []byte("R&D"))
			return bytes.ReplaceAll(b, []byte("Xraw"), []byte("\xc3\xa9")) // raw UTF-8 é
		},
	})
	src := fmt.Sprintf("imap://%s@%s?tls=none", from, p.Addr)
	code, _, stderr := cli(t, "copy", src, imapURL(srv, to))
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 3:\n%s", code, stderr)
	}
	for _, want := range []string{`folder=R&D`, `folder="é (2)"`, "2 folders failed", "not valid modified UTF-7"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr)
		}
	}
	counts, _ := imapCounts(t, srv, to, "INBOX", "Archive", "é")
	if want := map[string]int{"INBOX": 2, "Archive": 1, "é": 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("destination holds %v, want %v", counts, want)
	}
}

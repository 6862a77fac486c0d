package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// needTool finds a program the test runs; with CI=true a missing one fails
// the test instead of skipping it (scripts/test.sh installs them).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/test.sh installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// seedTreeAccount fills user's account with the folders the tree tests
// expect: INBOX 3, Archive, Archive/2024, Sent, Entwürfe and R&D 1 each.
func seedTreeAccount(t *testing.T, srv *dovecottest.Server, user string) []sourcetest.Fixture {
	t.Helper()
	var fx []sourcetest.Fixture
	for i, folder := range []string{"INBOX", "INBOX", "INBOX", "Archive", "Archive/2024", "Sent", "Entwürfe", "R&D"} {
		fx = append(fx, fixture(folder, i, []string{`\Seen`}))
	}
	sinktest.Put(t, imapStore(t, srv, user), fx)
	return fx
}

// A tree that mbsync wrote from a Dovecot account, in its common layout
// (Path ~/Mail/, Inbox ~/Mail/INBOX, SubFolders Verbatim: INBOX is a folder
// beside the others), comes back into an IMAP account whole, INBOX
// included.
func TestMbsyncTreeReadWhole(t *testing.T) {
	mbsync := needTool(t, "mbsync")
	srv, from, to := migrationPair(t)
	fx := seedTreeAccount(t, srv, from)

	home := t.TempDir()
	mail := filepath.Join(home, "Mail")
	os.MkdirAll(mail, 0o700) // mbsync makes folders, not the store's root
	cfg := filepath.Join(home, "mbsyncrc")
	// mbsync checks the certificate's host names, not its IP addresses:
	// "localhost" is among the test certificate's names.
	os.WriteFile(cfg, fmt.Appendf(nil, `IMAPAccount test
Host localhost
Port %d
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState *
`, srv.IMAPSPort, from, dovecottest.Password, srv.CAFile, mail, mail), 0o600)
	if out, err := exec.Command(mbsync, "-c", cfg, "-a").CombinedOutput(); err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(mail, "INBOX", "cur")); err != nil {
		t.Fatalf("mbsync did not write INBOX beside the folders: %v", err)
	}
	sum := copyJSON(t, "copy", "maildir:"+mail+"?layout=fs", imapURL(srv, to))
	if sum.Copied != len(fx) || sum.Failed != 0 {
		t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(fx), sum.Failed, sum.Errors)
	}
	counts, _ := imapCounts(t, srv, to, "INBOX", "Archive", "Archive/2024", "Sent", "Entwürfe", "R&D")
	want := map[string]int{"INBOX": 3, "Archive": 1, "Archive/2024": 1, "Sent": 1, "Entwürfe": 1, "R&D": 1}
	for f, n := range want {
		if counts[f] != n {
			t.Errorf("%s holds %d, want %d (%v)", f, counts[f], n, counts)
		}
	}
	// mbsync stamps an X-TUID header into each message it stores, so the
	// tree is compared with the account by Message-ID, not byte for byte.
	if code, out, stderr := cli(t, "verify", imapURL(srv, from), "maildir:"+mail+"?layout=fs"); code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
}

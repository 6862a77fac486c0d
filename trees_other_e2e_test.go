package main

import (
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
)

// Trees written by OfflineIMAP and getmail, the tools themselves run
// against the test Dovecot, are read whole: every message arrives.

// TestOfflineIMAPTreeReadWhole: OfflineIMAP keeps each folder as a
// directory under localfolders (INBOX among them) with names in modified
// UTF-7 and its sep between levels: '.' by default, read with
// ?layout=flat; '/' (nested directories), read with ?layout=fs. Either
// way every message arrives in the folder it came from.
func TestOfflineIMAPTreeReadWhole(t *testing.T) {
	offlineimap := needTool(t, "offlineimap")
	srv, from, _ := migrationPair(t)
	fx := seedTreeAccount(t, srv, from)
	for _, tc := range []struct{ sep, layout string }{{".", "flat"}, {"/", "fs"}} {
		t.Run("sep="+tc.sep, func(t *testing.T) {
			to := srv.NewUser(t)
			home := t.TempDir()
			cfg := filepath.Join(home, "offlineimaprc")
			os.WriteFile(cfg, fmt.Appendf(nil, `[general]
accounts = test
metadata = %[1]s/metadata

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %[1]s/Mail
sep = %[6]s

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = %[2]d
remoteuser = %[3]s
remotepass = %[4]s
ssl = yes
sslcacertfile = %[5]s
`, home, srv.IMAPSPort, from, dovecottest.Password, srv.CAFile, tc.sep), 0o600)
			if out, err := exec.Command(offlineimap, "-c", cfg, "-o", "-u", "quiet").CombinedOutput(); err != nil {
				t.Fatalf("offlineimap: %v\n%s", err, out)
			}
			tree := "maildir:" + filepath.Join(home, "Mail") + "?layout=" + tc.layout
			sum := copyJSON(t, "copy", tree, imapURL(srv, to))
			if sum.Copied != len(fx) || sum.Failed != 0 || sum.FailedFolders != 0 {
				t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(fx), sum.Failed, sum.Errors)
			}
			counts, _ := imapCounts(t, srv, to, "INBOX", "Archive", "Archive/2024", "Sent", "Entwürfe", "R&D")
			want := map[string]int{"INBOX": 3, "Archive": 1, "Archive/2024": 1, "Sent": 1, "Entwürfe": 1, "R&D": 1}
			for f, n := range want {
				if counts[f] != n {
					t.Errorf("%s holds %d, want %d (%v)", f, counts[f], n, counts)
				}
			}
			if code, out, stderr := cli(t, "verify", tree, imapURL(srv, to), "--deep"); code != exitOK {
				t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
			}
			// OfflineIMAP adds an X-OfflineIMAP header to each message: the
			// tree holds the account's messages by Message-ID.
			if code, out, stderr := cli(t, "verify", imapURL(srv, from), tree); code != exitOK {
				t.Fatalf("verify against the account: exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}

// TestGetmailTreeReadWhole: getmail delivers a POP3 inbox into one plain
// Maildir (the root is the inbox); it is read whole as INBOX.
func TestGetmailTreeReadWhole(t *testing.T) {
	getmail := needTool(t, "getmail")
	srv, from, to := migrationPair(t)
	var msgs [][]byte
	for i := range 5 {
		msgs = append(msgs, fmt.Appendf(nil, "Message-ID: <getmail-%d@x>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i))
	}
	srv.Deliver(t, from, msgs, nil)
	// Not t.TempDir: its parent is private to root, and getmail, run as
	// root, delivers as nobody, which must reach the Maildir.
	home, err := os.MkdirTemp("", "mf-getmail")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0o755)
	maildir := filepath.Join(home, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, d), 0o700) // getmail delivers into an existing Maildir
	}
	// getmail refuses to deliver as root; as root, it delivers as nobody.
	user := ""
	if os.Getuid() == 0 {
		u, err := osuser.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
		user = "user = nobody"
	}
	rc := filepath.Join(home, "getmailrc")
	os.WriteFile(rc, fmt.Appendf(nil, `[retriever]
type = SimplePOP3SSLRetriever
server = localhost
port = %d
username = %s
password = %s
ca_certs = %s

[destination]
type = Maildir
path = %s/
%s

[options]
read_all = true
delete = false
verbose = 0
`, srv.POP3SPort, from, dovecottest.Password, srv.CAFile, maildir, user), 0o600)
	if out, err := exec.Command(getmail, "--rcfile", rc, "--getmaildir", home).CombinedOutput(); err != nil {
		t.Fatalf("getmail: %v\n%s", err, out)
	}
	sum := copyJSON(t, "copy", "maildir:"+maildir, imapURL(srv, to))
	if sum.Copied != len(msgs) || sum.Failed != 0 {
		t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(msgs), sum.Failed, sum.Errors)
	}
	// getmail adds Delivered-To and Return-Path headers: compared by
	// Message-ID, the tree holds every message of the account.
	if code, out, stderr := cli(t, "verify", imapURL(srv, from), "maildir:"+maildir); code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
}

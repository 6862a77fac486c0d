package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/sourcetest"
)

func pop3URL(srv *dovecottest.Server, user string) string {
	return fmt.Sprintf("pop3s://%s@127.0.0.1:%d?ca_file=%s", user, srv.POP3SPort, srv.CAFile)
}

func deliverFixtures(t *testing.T, srv *dovecottest.Server, user string, fx []sourcetest.Fixture) {
	var msgs [][]byte
	for _, f := range fx {
		msgs = append(msgs, eol.Canonical(f.Content))
	}
	srv.Deliver(t, user, msgs, nil)
}

func inbox(fx []sourcetest.Fixture) []sourcetest.Fixture {
	out := make([]sourcetest.Fixture, len(fx))
	for i, f := range fx {
		f.Folder = "INBOX"
		out[i] = f
	}
	return out
}

// POP3 to Maildir: every corpus message byte for byte (NUL bytes, 0-byte
// messages and missing final line breaks included); a re-run copies
// nothing; with --delete-after-copy the mailbox ends empty and the
// destination holds everything once.
func TestPOP3EndToEnd(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	fx := inbox(sourcetest.DefaultFixtures(t))
	deliverFixtures(t, srv, user, fx)
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	ckpt := filepath.Join(dir, "pop.ckpt")

	sourcetest.Run(t, sourcetest.Opt{
		Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
		NoFlags:  true, NoDates: true,
		New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
			sum := copyJSON(t, "copy", pop3URL(srv, user), "maildir:"+backup, "--dedup", "none", "--checkpoint", ckpt)
			if sum.Copied != len(fx) {
				t.Fatalf("copied %d of %d: %+v", sum.Copied, len(fx), sum.Errors)
			}
			s, err := srcmaildir.Open(backup, srcmaildir.LayoutMaildirPP)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
	if sum := copyJSON(t, "copy", pop3URL(srv, user), "maildir:"+backup, "--dedup", "none", "--checkpoint", ckpt); sum.Copied != 0 || sum.AlreadyPresent != len(fx) {
		t.Fatalf("re-run: %d copied, %d present", sum.Copied, sum.AlreadyPresent)
	}
	// Move: deletes only what is recorded, at QUIT.
	sum := copyJSON(t, "copy", pop3URL(srv, user), "maildir:"+backup, "--dedup", "none", "--checkpoint", ckpt, "--delete-after-copy")
	if sum.Copied != 0 || sum.Deleted != len(fx) {
		t.Fatalf("move: %d copied, %d deleted", sum.Copied, sum.Deleted)
	}
	if sum := copyJSON(t, "copy", pop3URL(srv, user), "maildir:"+backup, "--dedup", "none", "--checkpoint", ckpt); sum.AlreadyPresent+sum.Copied != 0 {
		t.Fatalf("the mailbox still lists %d messages after the move", sum.AlreadyPresent+sum.Copied)
	}
	if n := sourcetest.CountMaildir(backup); n != len(fx) {
		t.Fatalf("the backup holds %d messages, want %d", n, len(fx))
	}
}

// POP3 to IMAP with the whole corpus: what IMAP cannot carry (NUL bytes,
// 0-byte messages) is named, exit 3; everything else arrives byte for byte.
func TestPOP3ToIMAP(t *testing.T) {
	srv, src, dst := migrationPair(t)
	all := inbox(sourcetest.DefaultFixtures(t))
	deliverFixtures(t, srv, src, all)
	carried, refused := imapCarried(all)
	sourcetest.Run(t, sourcetest.Opt{
		Fixtures: func(*testing.T) []sourcetest.Fixture { return carried },
		NoFlags:  true, NoDates: true,
		New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
			code, out, _ := cli(t, "copy", pop3URL(srv, src), imapURL(srv, dst), "--dedup", "none", "--json")
			var sum plan.Summary
			json.Unmarshal([]byte(out), &sum)
			if code != exitIncomplete || sum.Failed != refused || sum.Copied != len(carried) {
				t.Fatalf("exit %d, copied %d, failed %d; want 3, %d, %d", code, sum.Copied, sum.Failed, len(carried), refused)
			}
			var named []string
			for _, e := range sum.Errors {
				named = append(named, e.Error)
			}
			if all := strings.Join(named, " "); !strings.Contains(all, "NUL") || !strings.Contains(all, "0-byte") {
				t.Fatalf("errors do not name the cause: %s", all)
			}
			return imapStore(t, srv, dst)
		},
	})
}

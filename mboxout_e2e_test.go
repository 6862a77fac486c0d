package main

import (
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	srcmbox "github.com/mailferry/mailferry/source/mbox"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// An mbox archive opens anywhere and comes back unchanged: the corpus
// goes Maildir -> mbox -> Maildir and IMAP -> mbox -> IMAP (Dovecot), and
// every message arrives byte for byte (line endings aside) with its flags,
// keywords and date, in the mbox files as read by mailferry's mbox reader
// and at the end. Re-runs copy nothing, and verify agrees.
func TestMboxArchiveRoundTrips(t *testing.T) {
	dir := t.TempDir()
	check := func(t *testing.T, fx []sourcetest.Fixture, open func(t *testing.T) source.Source) {
		t.Helper()
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
			New:      func(t *testing.T, _ []sourcetest.Fixture) source.Source { return open(t) },
		})
	}
	mboxAt := func(path string) func(t *testing.T) source.Source {
		return func(t *testing.T) source.Source {
			s, err := srcmbox.Open(path, srcmbox.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	copyAll := func(t *testing.T, src, dst string, n int) {
		t.Helper()
		if sum := copyJSON(t, "copy", src, dst, "--dedup", "none"); sum.Copied != n {
			t.Fatalf("%s -> %s copied %d of %d: %+v", src, dst, sum.Copied, n, sum.Errors)
		}
		if again := copyJSON(t, "copy", src, dst, "--dedup", "none"); again.Copied != 0 {
			t.Fatalf("re-run copied %d", again.Copied)
		}
		if code, _, stderr := cli(t, "verify", "--deep", "--dedup", "none", src, dst); code != exitOK {
			t.Fatalf("verify %s %s: exit %d\n%s", src, dst, code, stderr)
		}
	}

	t.Run("Maildir", func(t *testing.T) {
		fx := sourcetest.DefaultFixtures(t)
		md := filepath.Join(dir, "md")
		s, err := sinkmaildirNew(md)
		if err != nil {
			t.Fatal(err)
		}
		sinktest.Put(t, s, fx)
		archive, back := filepath.Join(dir, "archive"), filepath.Join(dir, "back")
		copyAll(t, "maildir:"+md, "mbox:"+archive, len(fx))
		check(t, fx, mboxAt(archive))
		copyAll(t, "mbox:"+archive, "maildir:"+back, len(fx))
		check(t, fx, func(t *testing.T) source.Source {
			s, err := srcmaildir.Open(back, srcmaildir.LayoutMaildirPP)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})

	t.Run("IMAP", func(t *testing.T) {
		srv, src, dst := migrationPair(t)
		fx := imapSafe(t)
		sinktest.Put(t, imapStore(t, srv, src), fx)
		archive := filepath.Join(dir, "imap-archive")
		copyAll(t, imapURL(srv, src), "mbox:"+archive+"?layout=thunderbird", len(fx))
		check(t, fx, mboxAt(archive))
		copyAll(t, "mbox:"+archive, imapURL(srv, dst), len(fx))
		check(t, fx, func(t *testing.T) source.Source { return imapStore(t, srv, dst) })
	})
}

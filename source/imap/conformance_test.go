package imap_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	sinkimap "github.com/mailferry/mailferry/sink/imap"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// TestConformanceDovecot runs the source conformance suite on this
// package against a real Dovecot: every corpus message IMAP can carry
// (not those with NUL bytes or no bytes, which the IMAP sink refuses by
// name) is read back byte for byte, with flags, keywords, dates and
// folders, and IDs survive a new connection. It runs twice: as Dovecot
// comes, and with COMPRESS=DEFLATE (imap_zlib), every connection of both
// the writer and the reader compressed.
func TestConformanceDovecot(t *testing.T) {
	t.Run("plain", func(t *testing.T) { conformance(t, dovecottest.Options{}) })
	t.Run("COMPRESS=DEFLATE", func(t *testing.T) { conformance(t, dovecottest.Options{Compress: true}) })
}

func conformance(t *testing.T, opt dovecottest.Options) {
	srv := dovecottest.Start(t, opt)
	var fx []sourcetest.Fixture
	for _, f := range sourcetest.DefaultFixtures(t) {
		if !f.HasNUL() && len(f.Content) > 0 {
			fx = append(fx, f)
		}
	}
	var cfg srcimap.Config
	open := func(t *testing.T) source.Source {
		s, err := srcimap.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sourcetest.Run(t, sourcetest.Opt{
		Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
		New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
			cfg = srcimap.Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: srcimap.TLSImplicit, CAFile: srv.CAFile,
				User: srv.NewUser(t), Password: dovecottest.Password, Compress: opt.Compress}
			dst, err := sinkimap.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			sinktest.Put(t, dst, fx)
			dst.Close()
			return open(t)
		},
		Reopen: open,
	})
}

// A listing sends its FETCH with its EXAMINE, before knowing whether the
// mailbox holds anything: an empty mailbox (Dovecot answers that FETCH
// with BAD) or a missing one lists as such, and the one connection goes
// on to list the next folder in full.
func TestListingAfterEmptyAndMissing(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	cfg := srcimap.Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: srcimap.TLSImplicit, CAFile: srv.CAFile,
		User: srv.NewUser(t), Password: dovecottest.Password, Conns: 1}
	ctx := context.Background()
	dst, err := sinkimap.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := "Message-ID: <1@x>\r\n\r\nhello\r\n"
	if err := dst.CreateFolder(ctx, "Empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Put(ctx, "INBOX", source.Message{Size: int64(len(body))}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	s, err := srcimap.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func(folder string) (int, error) {
		n := 0
		err := s.List(ctx, folder, func(source.Message) error { n++; return nil })
		return n, err
	}
	for i := range 2 {
		if n, err := count("Empty"); n != 0 || err != nil {
			t.Fatalf("round %d: the empty folder listed %d messages, %v", i, n, err)
		}
		if _, err := count("Missing"); !errors.Is(err, source.ErrFolderNotFound) {
			t.Fatalf("round %d: the missing folder: %v, want ErrFolderNotFound", i, err)
		}
		if n, err := count("INBOX"); n != 1 || err != nil {
			t.Fatalf("round %d: INBOX listed %d messages, %v; want 1", i, n, err)
		}
	}
}

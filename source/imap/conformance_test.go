package imap_test

import (
	"context"
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

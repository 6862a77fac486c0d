package imap

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/sinktest"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// memServer starts go-imap's in-process server. It re-serialises messages
// (library audit #12), so it is for fast checks of protocol handling with
// well-formed CRLF messages; byte-exactness is proven against Dovecot.
func memServer(t *testing.T, caps imap.CapSet) (addr string, newUser func() string) {
	mem := imapmemserver.New()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
	})
	ln := testnet.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	n := 0
	return ln.Addr().String(), func() string {
		n++
		name := "mem" + strings.Repeat("x", n)
		u := imapmemserver.NewUser(name, "secret")
		u.Create("INBOX", nil)
		mem.AddUser(u)
		return name
	}
}

func wellFormed(*testing.T) []sourcetest.Fixture {
	var out []sourcetest.Fixture
	for _, f := range sourcetest.Generated("Generated/Awkward") {
		switch f.Name {
		case "generated/nul-bytes", "generated/zero-bytes", "generated/bare-lf", "generated/lone-cr", "generated/header-only", "generated/no-final-newline":
			continue // not carried, or re-serialised, by memserver
		}
		out = append(out, f)
	}
	return out
}

func TestConformanceMemServer(t *testing.T) {
	for _, tt := range []struct {
		name string
		caps imap.CapSet
	}{
		{"UIDPLUS", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}, imap.CapNamespace: {}}},
		{"plain IMAP4rev1", imap.CapSet{imap.CapIMAP4rev1: {}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, newUser := memServer(t, tt.caps)
			var cfg srcimap.Config
			sinktest.Run(t, sinktest.Opt{
				New: func(t *testing.T) sink.Sink {
					cfg = srcimap.Config{Addr: addr, TLS: srcimap.TLSNone, User: newUser(), Password: "secret"}
					return open(t, cfg)
				},
				Reopen:   func(t *testing.T) sink.Sink { return open(t, cfg) },
				Fixtures: wellFormed,
			})
		})
	}
}

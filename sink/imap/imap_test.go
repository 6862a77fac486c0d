package imap

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// newUser returns a fresh, empty account on srv.
func newUser(t *testing.T, srv *dovecottest.Server) string { return srv.NewUser(t) }

func config(srv *dovecottest.Server, user string) srcimap.Config {
	return srcimap.Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: srcimap.TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password}
}

// plainConfig is a Dovecot user reached in clear at addr: the plain port,
// or a proxy in front of it.
func plainConfig(addr, user string) srcimap.Config {
	return srcimap.Config{Addr: addr, TLS: srcimap.TLSNone, User: user, Password: dovecottest.Password}
}

func open(t *testing.T, cfg srcimap.Config) *Sink {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// imapFixtures is the default set less what IMAP cannot carry (NUL bytes,
// 0-byte messages): TestRefusedByName covers those.
func imapFixtures(t *testing.T) []sourcetest.Fixture {
	var out []sourcetest.Fixture
	for _, f := range sourcetest.DefaultFixtures(t) {
		if !f.HasNUL() && len(f.Content) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func TestConformanceDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	var cfg srcimap.Config
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) sink.Sink {
			cfg = config(srv, newUser(t, srv))
			return open(t, cfg)
		},
		Reopen:   func(t *testing.T) sink.Sink { return open(t, cfg) },
		Remove:   func(t *testing.T, m source.Message) { expunge(t, cfg, m) },
		Fixtures: imapFixtures,
	})
}

// expunge removes a message with another client, as a user would.
func expunge(t *testing.T, cfg srcimap.Config, m source.Message) {
	s := open(t, cfg)
	_, uid, err := srcimap.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := s.Pool.Get(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Pool.Put(cn, false)
	ns, _ := s.Namespace(context.Background())
	mailbox, _ := ns.ServerName(m.Folder)
	if _, err := cn.Select(mailbox, false); err != nil {
		t.Fatal(err)
	}
	err = cn.Do(func() error {
		if err := cn.Client().Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return cn.Client().UIDExpunge(imap.UIDSetNum(uid)).Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// What IMAP cannot carry is refused by name, never altered or dropped
// silently.
func TestRefusedByName(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	s := open(t, config(srv, newUser(t, srv)))
	for _, tt := range []struct{ name, body, want string }{
		{"nul", "Subject: x\r\n\r\na\x00b\r\n", "NUL"},
		{"empty", "", "empty"},
	} {
		_, err := s.Put(context.Background(), "INBOX", source.Message{Size: int64(len(tt.body))}, strings.NewReader(tt.body))
		if !errors.Is(err, sink.ErrRejected) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Put = %v, want ErrRejected naming %q", tt.name, err, tt.want)
		}
	}
}

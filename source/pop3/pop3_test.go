package pop3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

func config(srv *dovecottest.Server, user string) Config {
	return Config{Addr: dovecottest.Addr(srv.POP3SPort), TLS: TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password}
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func deliver(t *testing.T, srv *dovecottest.Server, user string, fx []sourcetest.Fixture) {
	var msgs [][]byte
	var dates []time.Time
	for _, f := range fx {
		// What a delivery agent writes into a Maildir: LF line endings.
		msgs = append(msgs, eol.Canonical(f.Content))
		dates = append(dates, f.Date)
	}
	srv.Deliver(t, user, msgs, dates)
}

func TestConformanceDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	var cfg Config
	sourcetest.Run(t, sourcetest.Opt{
		New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
			cfg = config(srv, srv.NewUser(t))
			deliver(t, srv, cfg.User, fx)
			return open(t, cfg)
		},
		Reopen:       func(t *testing.T) source.Source { return open(t, cfg) },
		SingleFolder: true,
		NoFlags:      true,
		NoDates:      true,
		// Every fixture: NUL bytes, 0-byte messages and messages without a
		// final line break included (see trailerReader).
	})
}

func TestNULThroughDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	msg := []byte("Subject: nul\n\nbefore\x00after\n")
	srv.Deliver(t, user, [][]byte{msg}, nil)
	s := open(t, config(srv, user))
	var got []byte
	s.List(context.Background(), "INBOX", func(m source.Message) error {
		r, err := s.Open(context.Background(), m)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err = io.ReadAll(r)
		return err
	})
	// Unlike its IMAP (library audit #11), Dovecot's POP3 sends NUL as is.
	if !bytes.Equal(eol.Canonical(got), msg) {
		t.Fatalf("got %q, want %q", got, msg)
	}
}

func TestDescribe(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	msg := "Received: from a by b; Tue, 1 Jan 2019 10:00:00 +0000\nReceived: from c by d;\n\tWed, 2 Jan 2019 11:00:00 +0100\nDate: Mon, 31 Dec 2018 09:00:00 +0000\nMessage-ID: <d@x>\n\nbody\n"
	srv.Deliver(t, user, [][]byte{[]byte(msg), []byte("Subject: none\n\nx\n")}, nil)
	s := open(t, config(srv, user))
	var ms []source.Message
	s.List(context.Background(), "INBOX", func(m source.Message) error { ms = append(ms, m); return nil })
	if len(ms) != 2 {
		t.Fatalf("listed %d", len(ms))
	}
	for i := range ms {
		if err := s.Describe(context.Background(), &ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := time.Date(2019, 1, 2, 10, 0, 0, 0, time.UTC)
	if ms[0].MessageID != "<d@x>" || !ms[0].MessageIDKnown || !ms[0].Date.Equal(want) {
		t.Errorf("described %+v; want Message-ID <d@x>, the newest Received date %v", ms[0], want)
	}
	if !ms[1].MessageIDKnown || ms[1].MessageID != "" || time.Since(ms[1].Date) > time.Minute {
		t.Errorf("described %+v; want no Message-ID, date now", ms[1])
	}
}

func TestDate(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		hdr  string
		want time.Time
	}{
		{"Date: Mon, 31 Dec 2018 09:00:00 +0000\n\n", time.Date(2018, 12, 31, 9, 0, 0, 0, time.UTC)},
		{"Received: junk without a date\nDate: Mon, 31 Dec 2018 09:00:00 +0000\n\n", time.Date(2018, 12, 31, 9, 0, 0, 0, time.UTC)},
		{"Subject: x\n\n", now},
		{"Received: by x; Thu, 3 Jan 2019 00:00:00 +0000 (UTC)\nReceived: by y; Wed, 2 Jan 2019 00:00:00 +0000\n\n", time.Date(2019, 1, 3, 0, 0, 0, 0, time.UTC)},
	} {
		if got := Date([]byte(tt.hdr), now); !got.Equal(tt.want) {
			t.Errorf("Date(%q) = %v, want %v", tt.hdr, got, tt.want)
		}
	}
}

func TestSecurity(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		ok   bool
		want string
	}{
		{"pop3s with CA", config(srv, user), true, ""},
		{"pop3s without CA", Config{Addr: dovecottest.Addr(srv.POP3SPort), TLS: TLSImplicit, User: user, Password: dovecottest.Password}, false, "certificate"},
		{"STLS with CA", Config{Addr: dovecottest.Addr(srv.POP3Port), TLS: TLSStart, CAFile: srv.CAFile, User: user, Password: dovecottest.Password}, true, ""},
		{"plaintext asked for", Config{Addr: dovecottest.Addr(srv.POP3Port), TLS: TLSNone, User: user, Password: dovecottest.Password}, true, ""},
		{"USER/PASS forced", Config{Addr: dovecottest.Addr(srv.POP3SPort), TLS: TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password, Auth: "user"}, true, ""},
		{"wrong password", Config{Addr: dovecottest.Addr(srv.POP3SPort), TLS: TLSImplicit, CAFile: srv.CAFile, User: user, Password: "wrong-xyzzy"}, false, "login rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(ctx, c.cfg)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "xyzzy") {
				t.Fatalf("err = %v, want one naming %q and no password", err, c.want)
			}
			if c.name == "wrong password" && !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
		})
	}
}

package imap

import (
	"context"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
)

// Against a Dovecot with imap_zlib, every connection is compressed, the
// pooled ones and those taken from go-imap (Detached) alike, when asked
// (?compress=on); against one without, none is.
func TestCompressNegotiated(t *testing.T) {
	for _, tt := range []struct {
		name   string
		server bool // imap_zlib loaded
		ask    bool
		want   bool
	}{
		{"offered and asked for", true, true, true},
		{"offered, not asked for", true, false, false},
		{"asked for, not offered", false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := dovecottest.Start(t, dovecottest.Options{Compress: tt.server})
			s, err := Open(context.Background(), Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: TLSImplicit, CAFile: srv.CAFile,
				User: srv.NewUser(t), Password: dovecottest.Password, Compress: tt.ask})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cn, err := s.Pool.Get(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			_, pooled := cn.h.Conn.(*deflateConn)
			// The connection works after the switch.
			if _, err := cn.c.List("", "*", nil).Collect(); err != nil {
				t.Fatalf("LIST after the switch: %v", err)
			}
			s.Pool.Put(cn, false)
			st, err := s.Pool.Detached(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, detached := st.Conn.(*deflateConn)
			st.Close()
			if pooled != tt.want || detached != tt.want {
				t.Errorf("pooled connection compressed: %v, detached: %v; want %v", pooled, detached, tt.want)
			}
		})
	}
}

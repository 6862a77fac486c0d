package imap

import (
	"bufio"
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// A connection taken from go-imap after COMPRESS asks the server nothing
// more: its capabilities came in its own greeting, and over a WAN each
// NOOP is a round trip its messages wait for. Before COMPRESS, the two
// NOOPs that make sure go-imap is owed nothing stay.
func TestDetachedAfterCompressAsksNothing(t *testing.T) {
	f := &fakeServer{compress: true}
	startFake(t, f)
	s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 5 * time.Second, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Pool.Detached(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.Conn.(*deflateConn); !ok {
		t.Fatalf("the detached stream is a %T, not compressed", st.Conn)
	}
	if n := f.zNoops.Load(); n != 0 {
		t.Errorf("%d NOOPs after COMPRESS, want none", n)
	}
	if n := f.noops.Load(); n != 4 {
		t.Errorf("%d NOOPs before COMPRESS on two connections, want 4", n)
	}
	ownsStream(t, st) // compressed, with nothing left unread
	if n := f.zNoops.Load(); n != 1 {
		t.Errorf("the server read %d compressed NOOPs, want 1", n)
	}
}

// A connection taken from go-imap asks nothing more when its login's
// answer carried the capabilities (Dovecot's does) and the round trip is
// known: go-imap is owed no CAPABILITY, and over a WAN each NOOP is a
// round trip an APPEND connection's first message waits for. Otherwise
// the two NOOPs stay.
func TestDetachedAfterLoginCaps(t *testing.T) {
	for _, tc := range []struct {
		name, loginCaps string
		noops           int32
	}{
		{"capabilities in the login's answer", "IMAP4rev1 LITERAL+ UIDPLUS", 0},
		{"no capabilities in the login's answer", "", 2},
		{"the greeting's capabilities again", "IMAP4rev1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{loginCaps: tc.loginCaps}
			s := fakeStore(t, f)
			ctx := context.Background()
			if _, err := s.Folders(ctx); err != nil { // times the round trip
				t.Fatal(err)
			}
			if s.RoundTrip() <= 0 {
				t.Fatal("no round trip timed by the listing")
			}
			before := f.noops.Load()
			st, err := s.Pool.Detached(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n := f.noops.Load() - before; n != tc.noops {
				t.Errorf("%d NOOPs to take the connection, want %d", n, tc.noops)
			}
			if st.RTT != s.RoundTrip() && tc.noops == 0 {
				t.Errorf("stream's round trip %v, want the store's %v", st.RTT, s.RoundTrip())
			}
			ownsStream(t, st)
		})
	}
}

// ownsStream checks that st is the owner's, with nothing left unread: a
// NOOP written on it is the next thing answered.
func ownsStream(t *testing.T, st *Stream) {
	t.Helper()
	if _, err := io.WriteString(st, "z1 NOOP\r\n"); err != nil {
		t.Fatal(err)
	}
	st.DC.Begin()
	line, err := bufio.NewReader(st).ReadString('\n')
	st.DC.End()
	if err != nil || line != "z1 OK done\r\n" {
		t.Fatalf("answer %q, %v", line, err)
	}
}

// Close says LOGOUT on every idle connection before it waits for any
// answer, and does not wait for a server that keeps silent.
func TestCloseLogsOutAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer bool
	}{{"server answers", true}, {"server silent", false}} {
		t.Run(tt.name, func(t *testing.T) {
			const conns = 3
			var mu sync.Mutex
			arrived := 0
			all, end := make(chan struct{}), make(chan struct{})
			defer close(end)
			met := 0 // LOGOUTs that saw all the others arrive before any answer
			f := &fakeServer{logout: func() bool {
				mu.Lock()
				if arrived++; arrived == conns {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
					mu.Lock()
					met++
					mu.Unlock()
				case <-time.After(5 * time.Second): // one at a time: never all
				}
				if !tt.answer {
					<-end
				}
				return tt.answer
			}}
			startFake(t, f)
			s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Conns: conns, Timeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var cs []*Conn
			for range conns {
				cn, err := s.Pool.Get(context.Background(), "")
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, cn)
			}
			for _, cn := range cs {
				s.Pool.Put(cn, false)
			}
			closed := make(chan struct{})
			go func() {
				s.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
				t.Fatal("Close still waits for the server's answers")
			}
			mu.Lock()
			defer mu.Unlock()
			if arrived != conns || met != conns {
				t.Errorf("%d LOGOUTs arrived, %d of them before any was answered; want %d, %d", arrived, met, conns, conns)
			}
		})
	}
}

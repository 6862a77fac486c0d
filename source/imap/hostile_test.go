package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/source"
)

// A greeting without end, before TLS (so anyone on the path can send
// it): the connection is dropped after a bounded amount, with a clear
// error, not read until memory runs out.
func TestHostileEndlessGreeting(t *testing.T) {
	for _, tls := range []string{TLSNone, TLSStart} {
		t.Run(tls, func(t *testing.T) {
			addr := testnet.Serve(t, func(c net.Conn) {
				defer c.Close()
				io.WriteString(c, "* OK ")
				testnet.Flood(c, 1<<40)
			})
			var err error
			alloc := testnet.Allocated(func() {
				_, err = Open(context.Background(), Config{Addr: addr, TLS: tls, User: "u", Password: "p", Timeout: 5 * time.Second})
			})
			if !errors.Is(err, netx.ErrTooMuch) {
				t.Fatalf("err = %v, want ErrTooMuch", err)
			}
			if alloc > 64<<20 {
				t.Fatalf("allocated %d MB for a greeting", alloc>>20)
			}
		})
	}
}

// A Message-ID "field" of 64 MiB in the listing: read no further than
// the bound, the rest is skipped, not held.
func TestHostileHugeHeaderLiteral(t *testing.T) {
	const huge = 64 << 20
	f := &fakeServer{list: func(w *bufio.Writer, tag string) {
		fmt.Fprintf(w, "* 1 FETCH (UID 5 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\nMessage-ID: <", huge)
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i < huge/len(chunk)-1; i++ {
			w.Write(chunk)
		}
		w.Write(chunk[:len(chunk)-len("Message-ID: <")])
		fmt.Fprintf(w, ")\r\n%s OK done\r\n", tag)
	}}
	s := fakeStore(t, f)
	var n int
	var err error
	alloc := testnet.Allocated(func() {
		err = s.List(context.Background(), "INBOX", func(m source.Message) error { n++; return nil })
	})
	if err != nil || n != 1 {
		t.Fatalf("listed %d messages, err %v; want the one message", n, err)
	}
	if alloc > 16<<20 {
		t.Fatalf("allocated %d MB for a 64 MB header field", alloc>>20)
	}
}

// waitFails opens msg5 and reads it, returning the error and how long
// the wait lasted.
func waitFails(s *Store, ctx context.Context) (error, time.Duration) {
	start := time.Now()
	r, err := s.Open(ctx, msg5)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	return err, time.Since(start)
}

// ?timeout= bounds a wait once, not four times, and a server that
// dribbles keep-alive lines does not hold a command for ever.
func TestHostileTimeouts(t *testing.T) {
	const timeout = time.Second
	for _, tc := range []struct {
		name string
		send func(w *bufio.Writer)
	}{
		{"silent", func(w *bufio.Writer) {}},
		{"keep-alive trickle", func(w *bufio.Writer) {
			for range 100 {
				if _, err := w.WriteString("* OK still working\r\n"); err != nil || w.Flush() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
				tc.send(w)
				time.Sleep(10 * time.Second)
				return true
			}}
			startFake(t, f)
			s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err, took := waitFails(s, context.Background())
			if err == nil || took < timeout || took > timeout+timeout/2 {
				t.Fatalf("err %v after %v; want a failure after the %v timeout", err, took, timeout)
			}
		})
	}
}

// Cancelling the run (Ctrl-C) ends a wait on a silent server at once.
func TestCancelEndsWait(t *testing.T) {
	f := &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		time.Sleep(10 * time.Second)
		return true
	}}
	startFake(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.AfterFunc(200*time.Millisecond, cancel)
	err, took := waitFails(s, ctx)
	if err == nil || took > time.Second {
		t.Fatalf("err %v after %v; want the wait ended within a second of the cancel", err, took)
	}
}

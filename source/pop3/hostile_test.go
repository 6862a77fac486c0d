package pop3

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/source"
)

// script is a POP3 server that greets and hands every command to onCmd,
// until onCmd returns false.
func script(onCmd func(w *bufio.Writer, c net.Conn, cmd string) bool) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		fmt.Fprint(w, "+OK ready\r\n")
		w.Flush()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if !onCmd(w, c, strings.TrimSpace(line)) {
				return
			}
			w.Flush()
		}
	}
}

// plain answers a command for a mailbox of one 100-byte message.
func plain(w *bufio.Writer, cmd string) { mailbox(w, cmd, 1, "") }

// mailbox answers a command for a mailbox of n 100-byte messages (u1, u2,
// ...), saying the capabilities in caps besides USER, TOP and UIDL.
func mailbox(w *bufio.Writer, cmd string, n int, caps string) {
	switch f := strings.Fields(cmd); strings.ToUpper(f[0]) {
	case "CAPA":
		fmt.Fprint(w, "+OK\r\nUSER\r\nTOP\r\nUIDL\r\n"+caps+".\r\n")
	case "UIDL", "LIST":
		fmt.Fprint(w, "+OK\r\n")
		for i := 1; i <= n; i++ {
			if strings.EqualFold(f[0], "UIDL") {
				fmt.Fprintf(w, "%d u%d\r\n", i, i)
			} else {
				fmt.Fprintf(w, "%d 100\r\n", i)
			}
		}
		fmt.Fprint(w, ".\r\n")
	default:
		fmt.Fprint(w, "+OK\r\n")
	}
}

// floodRETR answers a RETR or TOP with a message far bigger than LIST
// said, and reports whether cmd was one.
func floodRETR(w *bufio.Writer, c net.Conn, cmd string, flooded int) bool {
	if f := strings.Fields(cmd); f[0] != "RETR" && f[0] != "TOP" {
		return false
	}
	fmt.Fprint(w, "+OK\r\nMessage-ID: <big@x>\r\n\r\n")
	w.Flush()
	testnet.Flood(c, flooded)
	return true
}

// A hostile POP3 server costs a bounded amount of memory and time, and the
// error says what it did: a greeting without end, a CAPA without end, and
// a message far bigger than LIST said.
func TestHostilePOP3(t *testing.T) {
	const flooded = 200 << 20
	tests := []struct {
		name   string
		handle func(net.Conn)
		want   error
	}{
		{"greeting without end", func(c net.Conn) { defer c.Close(); c.Write([]byte("+OK ")); testnet.Flood(c, flooded) }, ErrTooLong},
		{"CAPA without end", script(func(w *bufio.Writer, c net.Conn, cmd string) bool {
			if strings.EqualFold(cmd, "CAPA") {
				fmt.Fprint(w, "+OK\r\n")
				w.Flush()
				for range flooded / 1024 {
					if _, err := fmt.Fprintf(w, "%s\r\n", strings.Repeat("X", 1022)); err != nil {
						return false
					}
				}
				return false
			}
			plain(w, cmd)
			return true
		}), ErrTooLong},
		{"a message far bigger than LIST said", script(func(w *bufio.Writer, c net.Conn, cmd string) bool {
			if floodRETR(w, c, cmd, flooded) {
				return false
			}
			plain(w, cmd)
			return true
		}), source.ErrSizeMismatch},
		{"a pipelined message far bigger than LIST said", script(func(w *bufio.Writer, c net.Conn, cmd string) bool {
			if floodRETR(w, c, cmd, flooded) {
				return false
			}
			mailbox(w, cmd, 2, "PIPELINING\r\n")
			return true
		}), source.ErrSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testnet.Serve(t, tt.handle)
			var err error
			start := time.Now()
			n := testnet.Allocated(func() {
				var s *Store
				s, err = Open(context.Background(), Config{Addr: addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 5 * time.Second})
				if err != nil {
					return
				}
				defer s.Close()
				m := source.Message{Folder: "INBOX", ID: "u1", Size: -1}
				// Read ahead as the planner does, which a server that
				// says PIPELINING answers several at a time.
				s.Prefetch(context.Background(), "INBOX", []source.Message{m, {Folder: "INBOX", ID: "u2", Size: -1}})
				err = s.Describe(context.Background(), &m)
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n > 64<<20 {
				t.Errorf("allocated %d MB against a server that sent up to %d MB", n>>20, flooded>>20)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("the error quotes %d bytes of the server's text", len(err.Error()))
			}
		})
	}
}

// waitRETR opens u1 on a store with the given timeout and reads it,
// returning the error and how long that took.
func waitRETR(t *testing.T, addr string, ctx context.Context, timeout time.Duration) (error, time.Duration) {
	s, err := Open(ctx, Config{Addr: addr, TLS: TLSNone, User: "u", Password: "p", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	r, err := s.Open(ctx, source.Message{Folder: "INBOX", ID: "u1", Size: -1})
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	return err, time.Since(start)
}

// ?timeout= bounds a wait once, and a server that sends a message a few
// bytes at a time does not hold the run for ever; Ctrl-C ends a wait at
// once.
func TestHostilePOP3Waits(t *testing.T) {
	retr := func(send func(w *bufio.Writer)) func(net.Conn) {
		return script(func(w *bufio.Writer, c net.Conn, cmd string) bool {
			if f := strings.Fields(cmd); f[0] == "RETR" || f[0] == "TOP" {
				fmt.Fprint(w, "+OK\r\n")
				w.Flush()
				send(w)
				time.Sleep(10 * time.Second)
				return false
			}
			plain(w, cmd)
			return true
		})
	}
	silent := retr(func(*bufio.Writer) {})
	trickle := retr(func(w *bufio.Writer) {
		for range 200 {
			if _, err := w.WriteString("xxxxxxxxxx"); err != nil || w.Flush() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	const timeout = time.Second
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
	}{{"silent", silent}, {"trickle", trickle}} {
		t.Run(tc.name, func(t *testing.T) {
			err, took := waitRETR(t, testnet.Serve(t, tc.handle), context.Background(), timeout)
			if err == nil || took < timeout || took > timeout+timeout/2 {
				t.Fatalf("err %v after %v; want a failure after the %v timeout", err, took, timeout)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		err, took := waitRETR(t, testnet.Serve(t, silent), ctx, time.Minute)
		if err == nil || took > time.Second {
			t.Fatalf("err %v after %v; want the wait ended within a second of the cancel", err, took)
		}
	})
}

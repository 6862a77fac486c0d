package pop3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/state"
)

// fakePOP3 is a scripted POP3 server for faults Dovecot will not show.
type fakePOP3 struct {
	mu       sync.Mutex
	msgs     []fakeMsg
	noUIDL   bool
	errOn    map[string]bool // RETR (or a whole TOP) of these UIDLs answers -ERR
	dropOn   map[string]bool // RETR (or a whole TOP) of these UIDLs sends half, then hangs up
	quitFail bool            // the connection drops on QUIT (nothing deleted)
	sasl     string          // advertised SASL mechanisms
	auth     string          // the decoded AUTH initial response received
	addr     string
	retrs    int
	tops     int // TOP n 0: a header
	peeks    int // TOP n k with k > 0: a whole message, unmarked
	// topHeadersOnly: TOP ignores its line count (a server that gets
	// RFC 1939 wrong), so a TOP of every line is short.
	topHeadersOnly bool
	// pipelining: CAPA says PIPELINING; pipelined counts the commands
	// that arrived behind another, not yet answered.
	pipelining bool
	pipelined  int
}

type fakeMsg struct {
	uidl, body string // body with CRLF line endings, not dot-stuffed
	deleted    bool
}

func (f *fakePOP3) start(t *testing.T) { f.addr = testnet.Serve(t, f.serve) }

func stuff(body string) string {
	lines := strings.SplitAfter(body, "\r\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	if !strings.HasSuffix(body, "\r\n") {
		b.WriteString("\r\n")
	}
	return b.String()
}

func (f *fakePOP3) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	fmt.Fprint(w, "+OK fake POP3\r\n")
	w.Flush()
	f.mu.Lock()
	visible := []int{} // this session's message numbers -> index in msgs
	for i, m := range f.msgs {
		if !m.deleted {
			visible = append(visible, i)
		}
	}
	f.mu.Unlock()
	marked := map[int]bool{}
	for {
		ahead := r.Buffered() > 0
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if ahead {
			f.mu.Lock()
			f.pipelined++
			f.mu.Unlock()
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		num := func() (int, bool) {
			if len(fields) < 2 {
				return 0, false
			}
			n, err := strconv.Atoi(fields[1])
			return n, err == nil && n >= 1 && n <= len(visible)
		}
		f.mu.Lock()
		switch strings.ToUpper(fields[0]) {
		case "AUTH":
			b, _ := base64.StdEncoding.DecodeString(fields[len(fields)-1])
			f.auth = strings.ToUpper(fields[1]) + " " + string(b)
			if strings.Contains(string(b), "auth=Bearer good-token") {
				fmt.Fprint(w, "+OK\r\n")
			} else {
				fmt.Fprint(w, "-ERR [AUTH] bad token\r\n")
			}
		case "CAPA":
			fmt.Fprint(w, "+OK\r\nUSER\r\nTOP\r\n")
			if f.sasl != "" {
				fmt.Fprintf(w, "SASL %s\r\n", f.sasl)
			}
			if !f.noUIDL {
				fmt.Fprint(w, "UIDL\r\n")
			}
			if f.pipelining {
				fmt.Fprint(w, "PIPELINING\r\n")
			}
			fmt.Fprint(w, ".\r\n")
		case "USER", "PASS", "NOOP", "RSET":
			fmt.Fprint(w, "+OK\r\n")
		case "STAT":
			fmt.Fprintf(w, "+OK %d 0\r\n", len(visible))
		case "LIST":
			fmt.Fprint(w, "+OK\r\n")
			for n, i := range visible {
				fmt.Fprintf(w, "%d %d\r\n", n+1, len(f.msgs[i].body))
			}
			fmt.Fprint(w, ".\r\n")
		case "UIDL":
			if f.noUIDL {
				fmt.Fprint(w, "-ERR no UIDL here\r\n")
				break
			}
			fmt.Fprint(w, "+OK\r\n")
			for n, i := range visible {
				fmt.Fprintf(w, "%d %s\r\n", n+1, f.msgs[i].uidl)
			}
			fmt.Fprint(w, ".\r\n")
		case "RETR", "TOP":
			n, ok := num()
			if !ok {
				fmt.Fprint(w, "-ERR no such message\r\n")
				break
			}
			m := f.msgs[visible[n-1]]
			body := m.body
			peeksBefore := f.peeks
			if strings.ToUpper(fields[0]) == "TOP" {
				lines := 0
				if len(fields) > 2 {
					lines, _ = strconv.Atoi(fields[2])
				}
				if lines == 0 {
					f.tops++
				} else {
					f.peeks++
				}
				if lines == 0 || f.topHeadersOnly {
					if i := strings.Index(body, "\r\n\r\n"); i >= 0 {
						body = body[:i+4]
					}
				} else if i := strings.Index(body, "\r\n\r\n"); i >= 0 {
					// The header, the blank line and that many body lines.
					rest := strings.SplitAfter(body[i+4:], "\r\n")
					body = body[:i+4] + strings.Join(rest[:min(lines, len(rest))], "")
				}
			} else {
				f.retrs++
			}
			if whole := strings.ToUpper(fields[0]) == "RETR" || f.peeks > peeksBefore; whole {
				if f.errOn[m.uidl] {
					fmt.Fprint(w, "-ERR cannot read this one\r\n")
					break
				}
				if f.dropOn[m.uidl] {
					fmt.Fprint(w, "+OK\r\n"+stuff(body)[:len(body)/2])
					w.Flush()
					f.mu.Unlock()
					return
				}
			}
			fmt.Fprint(w, "+OK\r\n"+stuff(body)+".\r\n")
		case "DELE":
			n, ok := num()
			if !ok {
				fmt.Fprint(w, "-ERR no such message\r\n")
				break
			}
			marked[visible[n-1]] = true
			fmt.Fprint(w, "+OK\r\n")
		case "QUIT":
			if f.quitFail {
				f.mu.Unlock()
				return
			}
			for i := range marked {
				f.msgs[i].deleted = true
			}
			fmt.Fprint(w, "+OK bye\r\n")
			w.Flush()
			f.mu.Unlock()
			return
		default:
			fmt.Fprint(w, "-ERR unknown\r\n")
		}
		f.mu.Unlock()
		w.Flush()
	}
}

func (f *fakePOP3) remaining() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.msgs {
		if !m.deleted {
			n++
		}
	}
	return n
}

func msgs(n int) []fakeMsg {
	var out []fakeMsg
	for i := range n {
		out = append(out, fakeMsg{uidl: fmt.Sprintf("uid-%03d", i), body: fmt.Sprintf("Message-ID: <%d@fake>\r\nSubject: %d\r\n\r\n.line with a dot\r\nbody %d\r\n", i, i, i)})
	}
	return out
}

func copyRun(t *testing.T, f *fakePOP3, dst *memory.Store, ckpt string, opt plan.Options) (*plan.Summary, error) {
	t.Helper()
	src, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c, err := state.Open(ckpt, "fake")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if opt.RetryBase == 0 {
		opt.RetryBase = time.Millisecond // faults here repeat on every retry
	}
	return plan.Run(context.Background(), src, dst, c, opt)
}

func bodies(dst *memory.Store) map[string]int {
	out := map[string]int{}
	for _, b := range dst.Bodies("INBOX") {
		out[string(b)]++
	}
	return out
}

func checkExactlyOnce(t *testing.T, f *fakePOP3, dst *memory.Store) {
	t.Helper()
	got := bodies(dst)
	for _, m := range f.msgs {
		if got[m.body] != 1 {
			t.Fatalf("%s at the destination %d times", m.uidl, got[m.body])
		}
	}
	if len(dst.Bodies("INBOX")) != len(f.msgs) {
		t.Fatalf("destination holds %d, want %d", len(dst.Bodies("INBOX")), len(f.msgs))
	}
}

func TestFakeFaultsThenResume(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(f *fakePOP3)
	}{
		{"drop mid-RETR", func(f *fakePOP3) { f.dropOn = map[string]bool{"uid-003": true} }},
		{"-ERR on one message", func(f *fakePOP3) { f.errOn = map[string]bool{"uid-005": true} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakePOP3{msgs: msgs(10)}
			tt.setup(f)
			f.start(t)
			dst := memory.New()
			ckpt := filepath.Join(t.TempDir(), "ckpt")
			sum, err := copyRun(t, f, dst, ckpt, plan.Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Failed != 1 || sum.Copied != 9 || len(sum.Errors) != 1 {
				t.Fatalf("with the fault: %+v", sum)
			}
			f.mu.Lock()
			f.dropOn, f.errOn = nil, nil
			f.mu.Unlock()
			sum, err = copyRun(t, f, dst, ckpt, plan.Options{})
			if err != nil || sum.Copied != 1 {
				t.Fatalf("resume: %+v, %v", sum, err)
			}
			checkExactlyOnce(t, f, dst)
		})
	}
}

func TestFakeNoUIDL(t *testing.T) {
	f := &fakePOP3{msgs: msgs(5), noUIDL: true}
	f.msgs = append(f.msgs, f.msgs[2]) // an identical twin: still two messages
	f.start(t)
	dst := memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	sum, err := copyRun(t, f, dst, ckpt, plan.Options{Dedup: plan.DedupNone})
	if err != nil || sum.Copied != 6 {
		t.Fatalf("first run: %+v, %v", sum, err)
	}
	sum, err = copyRun(t, f, dst, ckpt, plan.Options{Dedup: plan.DedupNone})
	if err != nil || sum.Copied != 0 || sum.AlreadyPresent != 6 {
		t.Fatalf("re-run without UIDL: %+v, %v", sum, err)
	}
}

func TestFakeUIDLChangesBetweenRuns(t *testing.T) {
	f := &fakePOP3{msgs: msgs(6)}
	f.start(t)
	dst := memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if sum, err := copyRun(t, f, dst, ckpt, plan.Options{}); err != nil || sum.Copied != 6 {
		t.Fatalf("first run: %+v, %v", sum, err)
	}
	// Another client deleted two, and three arrived: numbers shift.
	f.mu.Lock()
	f.msgs[0].deleted, f.msgs[3].deleted = true, true
	for _, m := range msgs(9)[6:] {
		f.msgs = append(f.msgs, m)
	}
	f.mu.Unlock()
	sum, err := copyRun(t, f, dst, ckpt, plan.Options{})
	if err != nil || sum.Copied != 3 || sum.AlreadyPresent != 4 {
		t.Fatalf("second run: %+v, %v", sum, err)
	}
	if len(dst.Bodies("INBOX")) != 9 {
		t.Fatalf("destination holds %d, want 9", len(dst.Bodies("INBOX")))
	}
}

func TestFakeLargeMessage(t *testing.T) {
	var big bytes.Buffer
	big.WriteString("Message-ID: <big@fake>\r\n\r\n")
	for big.Len() < 30<<20 {
		big.WriteString(".a line that needs stuffing, then more text to make it long enough\r\n")
	}
	f := &fakePOP3{msgs: []fakeMsg{{uidl: "big", body: big.String()}}}
	f.start(t)
	dst := memory.New()
	sum, err := copyRun(t, f, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if err != nil || sum.Copied != 1 || sum.Bytes != int64(big.Len()) {
		t.Fatalf("%+v, %v", sum, err)
	}
	if !bytes.Equal(dst.Bodies("INBOX")[0], big.Bytes()) {
		t.Fatal("30 MB message altered")
	}
}

// A new message is retrieved once: Describe's RETR is kept for the copy.
// One over describeWhole is described by TOP and retrieved by Open, and
// a duplicate (same Message-ID, same content) costs its retrieval and one
// of the message it matches, but is not copied.
func TestFakeOneRETRPerMessage(t *testing.T) {
	f := &fakePOP3{msgs: msgs(5)}
	big := "Message-ID: <big@fake>\r\n\r\n" + strings.Repeat("a longer line of the big message body\r\n", (describeWhole/38)+10)
	f.msgs = append(f.msgs, fakeMsg{uidl: "big", body: big}, fakeMsg{uidl: "dup", body: f.msgs[0].body})
	f.start(t)
	dst := memory.New()
	sum, err := copyRun(t, f, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if err != nil || sum.Copied != 6 || sum.DuplicatesSkipped != 1 {
		t.Fatalf("%+v, %v", sum, err)
	}
	// 8 whole reads: one per message, and the message the duplicate
	// shares its Message-ID with, read again to compare contents (two
	// messages with one Message-ID may be two messages).
	if f.peeks != 8 || f.tops != 1 || f.retrs != 0 {
		t.Errorf("%d whole TOPs, %d header TOPs and %d RETRs; want 8 (read without marking), 1 (the big one's header) and 0", f.peeks, f.tops, f.retrs)
	}
	got := bodies(dst)
	for _, m := range f.msgs[:6] {
		if got[m.body] != 1 {
			t.Errorf("%s at the destination %d times", m.uidl, got[m.body])
		}
	}
}

// Deleting takes effect at QUIT: a connection lost before it deletes
// nothing, and the next run deletes what the checkpoint records.
func TestFakeDeleteAfterCopy(t *testing.T) {
	f := &fakePOP3{msgs: msgs(4), quitFail: true}
	f.start(t)
	dst := memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	_, err := copyRun(t, f, dst, ckpt, plan.Options{DeleteAfterCopy: true})
	if err == nil || f.remaining() != 4 {
		t.Fatalf("QUIT lost: err %v, %d left on the server; want an error and 4", err, f.remaining())
	}
	f.mu.Lock()
	f.quitFail = false
	f.mu.Unlock()
	sum, err := copyRun(t, f, dst, ckpt, plan.Options{DeleteAfterCopy: true})
	if err != nil || sum.Copied != 0 || sum.Deleted != 4 || f.remaining() != 0 {
		t.Fatalf("second run: %+v, %v, %d left", sum, err, f.remaining())
	}
	checkExactlyOnce(t, f, dst)
}

func TestFakeOAuth2(t *testing.T) {
	f := &fakePOP3{msgs: msgs(2), sasl: "PLAIN XOAUTH2"}
	f.start(t)
	s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "alice", Token: "good-token"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.HasPrefix(f.auth, "XOAUTH2 user=alice\x01auth=Bearer good-token") {
		t.Fatalf("AUTH sent %q", f.auth)
	}
	if _, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "alice", Token: "stale"}); !errors.Is(err, ErrAuth) {
		t.Fatalf("bad token: %v", err)
	}
}

// With PIPELINING, the messages to describe are asked for a window at a
// time, every message still read once; a refusal or a dropped connection
// in the middle of a window costs that message alone, and a resume
// finishes the job exactly once. Without it, one command at a time.
func TestFakePipelining(t *testing.T) {
	for _, tt := range []struct {
		name       string
		pipelining bool
		setup      func(f *fakePOP3)
		failed     int
	}{
		{"no PIPELINING", false, func(*fakePOP3) {}, 0},
		{"PIPELINING", true, func(*fakePOP3) {}, 0},
		{"PIPELINING, -ERR mid-window", true, func(f *fakePOP3) { f.errOn = map[string]bool{"uid-004": true} }, 1},
		{"PIPELINING, dropped mid-window", true, func(f *fakePOP3) { f.dropOn = map[string]bool{"uid-006": true} }, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakePOP3{msgs: msgs(40), pipelining: tt.pipelining}
			tt.setup(f)
			f.start(t)
			dst := memory.New()
			ckpt := filepath.Join(t.TempDir(), "ckpt")
			sum, err := copyRun(t, f, dst, ckpt, plan.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			pipelined, peeks := f.pipelined, f.peeks
			f.dropOn, f.errOn = nil, nil
			f.mu.Unlock()
			if sum.Failed != tt.failed || sum.Copied != 40-tt.failed {
				t.Fatalf("copied %d, failed %d; want %d and %d\n%+v", sum.Copied, sum.Failed, 40-tt.failed, tt.failed, sum.Errors)
			}
			if tt.pipelining != (pipelined > 0) {
				t.Errorf("%d commands pipelined, with PIPELINING %v", pipelined, tt.pipelining)
			}
			if tt.failed == 0 && peeks != 40 {
				t.Errorf("%d whole reads of 40 messages, want one each", peeks)
			}
			if tt.failed > 0 {
				if sum, err = copyRun(t, f, dst, ckpt, plan.Options{}); err != nil || sum.Copied != tt.failed {
					t.Fatalf("resume: %+v, %v", sum, err)
				}
			}
			checkExactlyOnce(t, f, dst)
		})
	}
}

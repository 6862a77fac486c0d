package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/state"
)

// appendServer is a scripted IMAP server that stores APPENDs in memory and
// answers the n-th APPEND (counting from 1) with refusals[n] if set.
type appendServer struct {
	mu       sync.Mutex
	refusals map[int]string // e.g. "NO [OVERQUOTA] over quota"
	appends  int
	stored   map[string][]string // mailbox -> bodies
	folders  map[string]bool
	addr     string
	uidNext  int
	caps     string
	// per connection, in the order they logged in: the mailboxes its
	// APPENDs went to, and whether each used a non-synchronizing literal
	conns  []*fakeConn
	dropAt int // close the connection instead of answering this APPEND
	holdN  int // a connection's answers wait until it has this many messages
	// failLogin refuses the login of the connection with this number
	// (counting from 1)
	failLogin int
	delay     time.Duration // before each APPEND's answer
	// refuse, if set, answers an APPEND of these bodies with a refusal
	refuse func(bodies []string) (string, bool)
	// loginGate, if set, runs before a LOGIN is answered, without mu:
	// it may hold a connection being made.
	loginGate func()
}

type fakeConn struct {
	mailboxes map[string]int
	plus      int   // messages sent as {n+}
	appends   int   // messages
	batches   []int // messages per APPEND command
}

var literalAtEnd = regexp.MustCompile(`\{(\d+)(\+?)\}\r?\n$`)

// startAppendServer starts the fake; set, if given, changes its settings
// before it serves.
func startAppendServer(t *testing.T, refusals map[int]string, set ...func(*appendServer)) *appendServer {
	s := &appendServer{refusals: refusals, stored: map[string][]string{}, folders: map[string]bool{"INBOX": true}, uidNext: 1}
	for _, f := range set {
		f(s)
	}
	s.addr = testnet.Serve(t, s.serve)
	return s
}

func unquote(s string) string { return strings.Trim(s, `"`) }

func (s *appendServer) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	caps := s.caps
	if caps == "" {
		caps = "IMAP4rev1 UIDPLUS"
	}
	fmt.Fprintf(w, "* OK [CAPABILITY %s] fake ready\r\n", caps)
	w.Flush()
	fc := &fakeConn{mailboxes: map[string]int{}}
	s.mu.Lock()
	s.conns = append(s.conns, fc)
	s.mu.Unlock()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		if cmd == "LOGIN" && s.loginGate != nil {
			s.loginGate()
		}
		s.mu.Lock()
		switch cmd {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK done\r\n", caps, tag)
		case "LOGIN":
			if len(s.conns) == s.failLogin {
				fmt.Fprintf(w, "%s NO [UNAVAILABLE] too many connections\r\n", tag)
				break
			}
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		case "SUBSCRIBE", "NOOP", "UNSELECT":
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		case "LIST":
			fmt.Fprintf(w, "* LIST () \"/\" \"INBOX\"\r\n%s OK done\r\n", tag)
		case "CREATE":
			s.folders[unquote(f[2])] = true
			fmt.Fprintf(w, "%s OK created\r\n", tag)
		case "SELECT", "EXAMINE":
			if !s.folders[unquote(f[2])] {
				fmt.Fprintf(w, "%s NO [NONEXISTENT] no such mailbox\r\n", tag)
				break
			}
			fmt.Fprintf(w, "* 0 EXISTS\r\n* OK [UIDVALIDITY 9] v\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] p\r\n%s OK [READ-WRITE] done\r\n", tag)
		case "APPEND":
			m := literalAtEnd.FindStringSubmatch(line)
			if m == nil {
				fmt.Fprintf(w, "%s BAD no literal\r\n", tag)
				break
			}
			// One message, or several (MULTIAPPEND): each literal is
			// followed by the next message's flags, date and literal, or
			// by the command's end.
			var bodies []string
			plus := 0
			s.mu.Unlock()
			for m != nil {
				n, _ := strconv.Atoi(m[1])
				if m[2] == "" {
					fmt.Fprint(w, "+ go ahead\r\n")
					w.Flush()
				} else {
					plus++
				}
				body := make([]byte, n)
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
				bodies = append(bodies, string(body))
				rest, _ := r.ReadString('\n')
				m = literalAtEnd.FindStringSubmatch(rest)
			}
			time.Sleep(s.delay)
			s.mu.Lock()
			s.appends++
			mailbox := unquote(f[2])
			fc.appends += len(bodies)
			fc.plus += plus
			fc.mailboxes[mailbox] += len(bodies)
			fc.batches = append(fc.batches, len(bodies))
			if s.appends == s.dropAt {
				s.mu.Unlock()
				return
			}
			refusal, ok := s.refusals[s.appends]
			if s.refuse != nil && !ok {
				refusal, ok = s.refuse(bodies)
			}
			if ok {
				fmt.Fprintf(w, "%s %s\r\n", tag, refusal)
				break
			}
			if !s.folders[mailbox] {
				fmt.Fprintf(w, "%s NO [TRYCREATE] create it first\r\n", tag)
				break
			}
			s.stored[mailbox] = append(s.stored[mailbox], bodies...)
			uids := strconv.Itoa(s.uidNext)
			if len(bodies) > 1 {
				uids += ":" + strconv.Itoa(s.uidNext+len(bodies)-1)
			}
			fmt.Fprintf(w, "%s OK [APPENDUID 9 %s] stored\r\n", tag, uids)
			s.uidNext += len(bodies)
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE bye\r\n%s OK done\r\n", tag)
			w.Flush()
			s.mu.Unlock()
			return
		default:
			fmt.Fprintf(w, "%s BAD unknown\r\n", tag)
		}
		held := cmd == "APPEND" && fc.appends < s.holdN
		s.mu.Unlock()
		if !held {
			w.Flush()
		}
	}
}

func (s *appendServer) count(mailbox string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored[mailbox])
}

func sourceOf(t *testing.T, n int, folder string) *memory.Store {
	src := memory.New()
	for i := range n {
		body := fmt.Sprintf("Message-ID: <%d@refusal.test>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
		src.Put(context.Background(), folder, source.Message{Size: int64(len(body)), Date: time.Unix(1600000000, 0)}, strings.NewReader(body))
	}
	return src
}

// fakeCaps: without LITERAL+ every APPEND goes through go-imap; with it,
// through an appender of its own (it needs a second connection).
var fakeCaps = []string{"IMAP4rev1 UIDPLUS", "IMAP4rev1 UIDPLUS LITERAL+ UNSELECT"}

// checkLiteralPlus fails unless the APPENDs used non-synchronizing
// literals exactly when the server offered LITERAL+.
func (s *appendServer) checkLiteralPlus(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	plus, all := 0, 0
	for _, c := range s.conns {
		plus += c.plus
		all += c.appends
	}
	want := 0
	if strings.Contains(s.caps, "LITERAL+") {
		want = all
	}
	if all == 0 || (want == 0) != (plus == 0) {
		t.Fatalf("%d of %d APPENDs used LITERAL+ with capabilities %q", plus, all, s.caps)
	}
}

func runTo(t *testing.T, srv *appendServer, src source.Source, ckpt string) (*plan.Summary, error) {
	dst, err := Open(context.Background(), srcimap.Config{Addr: srv.addr, TLS: srcimap.TLSNone, User: "u", Password: "p", Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	c, err := state.Open(ckpt, "refusals")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return plan.Run(context.Background(), src, dst, c, plan.Options{Workers: 1, RetryBase: 10 * time.Millisecond})
}

// Server refusals end in the documented behaviour, named in the summary.
func TestServerRefusals(t *testing.T) {
	tests := []struct {
		name     string
		refusals map[int]string
		err      error // from the run
		failed   int
		copied   int
		retries  int
	}{
		{"TOOBIG skips and names that message", map[int]string{2: "NO [TOOBIG] message too large"}, nil, 1, 4, 0},
		{"LIMIT skips and names that message", map[int]string{3: "NO [LIMIT] too many messages"}, nil, 1, 4, 0},
		{"OVERQUOTA stops the run", map[int]string{3: "NO [OVERQUOTA] quota exceeded"}, sink.ErrStop, 1, 2, 0},
		{"backoff hint is waited and retried", map[int]string{2: "BAD [UNAVAILABLE] Server Unavailable. Suggested Backoff Time: 30 milliseconds"}, nil, 0, 5, 1},
		{"UNAVAILABLE is retried", map[int]string{1: "NO [UNAVAILABLE] try later"}, nil, 0, 5, 1},
	}
	for _, tt := range tests {
		for _, caps := range fakeCaps {
			t.Run(tt.name+"/"+caps, func(t *testing.T) {
				srv := startAppendServer(t, tt.refusals, func(s *appendServer) { s.caps = caps })
				ckpt := filepath.Join(t.TempDir(), "ckpt")
				sum, err := runTo(t, srv, sourceOf(t, 5, "INBOX"), ckpt)
				if !errors.Is(err, tt.err) {
					t.Fatalf("run: %v, want %v", err, tt.err)
				}
				if sum.Failed != tt.failed || sum.Copied != tt.copied || sum.Retries != tt.retries || srv.count("INBOX") != tt.copied {
					t.Fatalf("failed %d copied %d retries %d stored %d; want %d %d %d %d (%+v)", sum.Failed, sum.Copied, sum.Retries, srv.count("INBOX"), tt.failed, tt.copied, tt.retries, tt.copied, sum.Errors)
				}
				if tt.failed > 0 && (len(sum.Errors) == 0 || !strings.Contains(sum.Errors[0].Message, "refusal.test")) {
					t.Fatalf("the refused message is not named: %+v", sum.Errors)
				}
				// The checkpoint stays valid: a run without the refusal
				// completes, nothing twice.
				srv.mu.Lock()
				srv.refusals = nil
				srv.mu.Unlock()
				if _, err := runTo(t, srv, sourceOf(t, 5, "INBOX"), ckpt); err != nil {
					t.Fatal(err)
				}
				if srv.count("INBOX") != 5 {
					t.Fatalf("after the refusal is gone the server holds %d, want 5", srv.count("INBOX"))
				}
				srv.checkLiteralPlus(t)
			})
		}
	}
}

// A folder deleted by another client during the run: [TRYCREATE] on
// APPEND, or [NONEXISTENT] on the SELECT before it, make the sink create
// the folder again and append.
func TestTryCreate(t *testing.T) {
	for _, selected := range []bool{true, false} {
		for _, caps := range fakeCaps {
			t.Run(fmt.Sprintf("permanent flags known=%v/%s", selected, caps), func(t *testing.T) {
				srv := startAppendServer(t, nil, func(s *appendServer) { s.caps = caps })
				dst := openFake(t, srv, 2)
				dst.created["Box"] = true // created earlier in the run, since deleted
				if selected {
					dst.perm["Box"] = nil // no SELECT: APPEND meets [TRYCREATE]
				}
				body := "Subject: x\r\n\r\ny\r\n"
				if _, err := dst.Put(context.Background(), "Box", source.Message{Size: int64(len(body))}, strings.NewReader(body)); err != nil {
					t.Fatalf("Put: %v", err)
				}
				if srv.count("Box") != 1 {
					t.Fatalf("Box holds %d", srv.count("Box"))
				}
			})
		}
	}
}

// A message over APPENDLIMIT is refused by name without being sent.
func TestAppendLimit(t *testing.T) {
	for _, caps := range fakeCaps {
		t.Run(caps, func(t *testing.T) { testAppendLimit(t, caps+" APPENDLIMIT=100") })
	}
}

func testAppendLimit(t *testing.T, caps string) {
	srv := startAppendServer(t, nil, func(s *appendServer) { s.caps = caps })
	dst := openFake(t, srv, 2)
	small, big := "Subject: s\r\n\r\nok\r\n", "Subject: b\r\n\r\n"+strings.Repeat("x", 200)+"\r\n"
	if _, err := dst.Put(context.Background(), "INBOX", source.Message{Size: int64(len(small))}, strings.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	_, err := dst.Put(context.Background(), "INBOX", source.Message{Size: int64(len(big))}, strings.NewReader(big))
	if !errors.Is(err, sink.ErrRejected) || !strings.Contains(err.Error(), "APPENDLIMIT") {
		t.Fatalf("Put over the limit: %v", err)
	}
	srv.mu.Lock()
	n := srv.appends
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("the server received %d APPENDs, want 1", n)
	}
	srv.checkLiteralPlus(t)
}

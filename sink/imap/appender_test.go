package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/imapappend"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

const literalPlusCaps = "IMAP4rev1 UIDPLUS LITERAL+ UNSELECT"

func openFake(t *testing.T, srv *appendServer, conns int) *Sink {
	t.Helper()
	dst, err := Open(context.Background(), srcimap.Config{Addr: srv.addr, TLS: srcimap.TLSNone, User: "u", Password: "p", Conns: conns, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return dst
}

// putN puts n messages of over 4 KB (go-imap would wait for "+" before
// each) into folder at once.
func putN(t *testing.T, dst *Sink, folder string, from, n int) []error {
	t.Helper()
	var bodies []string
	for i := range n {
		bodies = append(bodies, fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", from+i, strings.Repeat("x", 5000)))
	}
	_, errs := putAll(dst, folder, bodies)
	return errs
}

// putAll puts bodies into folder at once and returns each Put's ID and
// error.
func putAll(dst *Sink, folder string, bodies []string) ([]string, []error) {
	ids, errs := make([]string, len(bodies)), make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = dst.Put(context.Background(), folder, source.Message{Size: int64(len(body))}, strings.NewReader(body))
		}()
	}
	wg.Wait()
	return ids, errs
}

// small returns n short numbered bodies.
func small(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	return out
}

// With LITERAL+, a mailbox's messages go down one connection of their own,
// two commands at once, none waiting for the server's "+": this fake never
// sends one to {n+}, and holds its answers until two APPENDs are in, so a
// client that waited for either would time out. Without MULTIAPPEND,
// every message is an APPEND of its own.
func TestAppenderPipelines(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps, s.holdN = literalPlusCaps, imapappend.CommandsAhead
		s.folders["Other"] = true
	})
	dst := openFake(t, srv, 3)
	for _, folder := range []string{"INBOX", "Other"} {
		for i, err := range putN(t, dst, folder, 0, 6) {
			if err != nil {
				t.Fatalf("%s: Put %d: %v", folder, i, err)
			}
		}
	}
	if srv.count("INBOX") != 6 || srv.count("Other") != 6 {
		t.Fatalf("stored INBOX %d, Other %d; want 6 and 6", srv.count("INBOX"), srv.count("Other"))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	writers := 0
	for i, c := range srv.conns {
		if c.appends == 0 {
			continue
		}
		writers++
		if len(c.mailboxes) != 1 || c.plus != c.appends || slices.Max(c.batches) != 1 {
			t.Errorf("connection %d: APPENDs into %v, %d of %d with LITERAL+, messages per command %v", i, c.mailboxes, c.plus, c.appends, c.batches)
		}
	}
	if writers != 2 {
		t.Errorf("%d connections appended, want one per mailbox", writers)
	}
}

// With MULTIAPPEND, messages that wait together go in one command, and
// each gets its own UID from the answer's range.
func TestAppenderBatches(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps, s.delay = literalPlusCaps+" MULTIAPPEND", 30*time.Millisecond
	})
	dst := openFake(t, srv, 2)
	bodies := small(12)
	ids, errs := putAll(dst, "INBOX", bodies)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	// The ID each Put returned names the body it sent.
	for i, id := range ids {
		_, uid, err := srcimap.ParseID(id)
		if err != nil || int(uid) > len(srv.stored["INBOX"]) || srv.stored["INBOX"][uid-1] != bodies[i] {
			t.Errorf("Put %d returned %q (%v), which the server holds as another message", i, id, err)
		}
	}
	srv.checkBatched(t, "INBOX", 12)
}

// checkBatched fails unless mailbox holds want messages and some APPEND
// carried more than one; s.mu is held.
func (s *appendServer) checkBatched(t *testing.T, mailbox string, want int) {
	t.Helper()
	var batches []int
	for _, c := range s.conns {
		batches = append(batches, c.batches...)
	}
	if len(s.stored[mailbox]) != want || slices.Max(batches) < 2 {
		t.Fatalf("stored %d, messages per command %v: want %d, some together", len(s.stored[mailbox]), batches, want)
	}
}

// A MULTIAPPEND refused as a whole stores none of its messages; each is
// sent again on its own, so only the one the server will not take fails.
func TestAppenderBatchRefusedSentSingly(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps, s.delay = literalPlusCaps+" MULTIAPPEND", 30*time.Millisecond
		s.refuse = func(bodies []string) (string, bool) {
			for _, b := range bodies {
				if strings.HasPrefix(b, "Subject: 5\r\n") {
					return "NO [TOOBIG] too big", true
				}
			}
			return "", false
		}
	})
	dst := openFake(t, srv, 2)
	_, errs := putAll(dst, "INBOX", small(10))
	for i, err := range errs {
		if (i == 5) != errors.Is(err, sink.ErrRejected) || (i != 5 && err != nil) {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.checkBatched(t, "INBOX", 9)
}

// A connection lost with APPENDs in flight fails them as transient (the
// planner looks at the destination before trying again); the next message
// gets a new connection.
func TestAppenderConnectionLost(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) { s.caps, s.dropAt = literalPlusCaps, 3 })
	dst := openFake(t, srv, 2)
	for i := range 4 {
		errs := putN(t, dst, "INBOX", i, 1)
		var te *source.TransientError
		switch {
		case i == 2 && !errors.As(errs[0], &te):
			t.Fatalf("Put %d on a dropped connection: %v (%T), want a source.TransientError", i, errs[0], errs[0])
		case i != 2 && errs[0] != nil:
			t.Fatalf("Put %d: %v", i, errs[0])
		}
	}
	if srv.count("INBOX") != 3 {
		t.Fatalf("stored %d, want 3", srv.count("INBOX"))
	}
	srv.checkLiteralPlus(t)
}

// After BAD the server may not have read the literal as one: the
// connection is dropped, and the next message goes down a new one.
func TestAppenderBADStartsAfresh(t *testing.T) {
	srv := startAppendServer(t, map[int]string{2: "BAD [CLIENTBUG] confused"}, func(s *appendServer) { s.caps = literalPlusCaps })
	dst := openFake(t, srv, 2)
	var errs []error
	for i := range 3 {
		errs = append(errs, putN(t, dst, "INBOX", i, 1)[0])
	}
	var ie *imap.Error
	if errs[0] != nil || !errors.As(errs[1], &ie) || ie.Type != imap.StatusResponseTypeBad || errs[2] != nil {
		t.Fatalf("Puts: %v", errs)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var used []int
	for _, c := range srv.conns {
		if c.appends > 0 {
			used = append(used, c.appends)
		}
	}
	if len(used) != 2 || used[0] != 2 || used[1] != 1 {
		t.Fatalf("APPENDs per connection %v, want [2 1]: a new connection after BAD", used)
	}
}

// Appenders keep their connections: one of the pool's stays free for
// everything else, the least recently used idle appender making room.
func TestAppendersLeaveAConnection(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps = literalPlusCaps
		for _, f := range []string{"A", "B", "C"} {
			s.folders[f] = true
		}
	})
	dst := openFake(t, srv, 3)
	for _, f := range []string{"A", "B", "C", "A"} {
		if errs := putN(t, dst, f, 0, 2); errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: %v", f, errs)
		}
	}
	dst.apMu.Lock()
	n := len(dst.appenders)
	dst.apMu.Unlock()
	if n != 2 {
		t.Fatalf("%d appenders with 3 connections, want 2", n)
	}
	// The pool still lends a connection (this would block otherwise).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cn, err := dst.Pool.Get(ctx, "")
	if err != nil {
		t.Fatalf("no connection left for the pool: %v", err)
	}
	dst.Pool.Put(cn, false)
	if srv.count("A") != 4 || srv.count("B") != 2 || srv.count("C") != 2 {
		t.Fatalf("stored A %d B %d C %d", srv.count("A"), srv.count("B"), srv.count("C"))
	}
}

// Against Dovecot: messages over 4 KB and over the LITERAL+ limit, into
// folders whose names need quoting and modified UTF-7, arrive byte for
// byte with their flags and dates, through appenders.
func TestAppenderDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	cfg := config(srv, newUser(t, srv))
	s := open(t, cfg)
	type want struct {
		body  string
		date  time.Time
		flags []string
	}
	sent := map[string]want{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 30 {
		folder := []string{"INBOX", "Entwürfe", `Say "hi" \ there`}[i%3]
		size := []int{100, 5000, 70000, imapappend.LiteralPlusMax + 10}[i%4]
		body := fmt.Sprintf("Message-ID: <%d@appender.test>\r\nSubject: %d\r\n\r\n%s\r\n", i, i, strings.Repeat(fmt.Sprintf("%d ", i), size/3))
		m := source.Message{Size: int64(len(body)), Date: time.Date(2021, 3, 4, 5, 6, i, 0, time.FixedZone("", 3600)), Flags: []string{`\Seen`, "$Label1"}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Put(context.Background(), folder, m, strings.NewReader(body)); err != nil {
				errs <- fmt.Errorf("%s %d: %w", folder, i, err)
				return
			}
			mu.Lock()
			sent[fmt.Sprintf("<%d@appender.test>", i)] = want{body, m.Date, m.Flags}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.apMu.Lock()
	n := len(s.appenders)
	s.apMu.Unlock()
	if n == 0 {
		t.Fatal("no appender was used: Dovecot offers LITERAL+")
	}
	got := 0
	for _, folder := range []string{"INBOX", "Entwürfe", `Say "hi" \ there`} {
		err := s.List(context.Background(), folder, func(m source.Message) error {
			w, ok := sent[m.MessageID]
			if !ok {
				return fmt.Errorf("%s: unexpected %s", folder, m.MessageID)
			}
			got++
			r, err := s.Open(context.Background(), m)
			if err != nil {
				return err
			}
			defer r.Close()
			var b strings.Builder
			if _, err := bufio.NewReader(r).WriteTo(&b); err != nil {
				return err
			}
			if b.String() != w.body || !m.Date.Equal(w.date) || strings.Join(m.Flags, " ") != strings.Join(source.NormalizeFlags(w.flags), " ") {
				return fmt.Errorf("%s %s: %d bytes (want %d), date %v (want %v), flags %q (want %q)", folder, m.MessageID, b.Len(), len(w.body), m.Date, w.date, m.Flags, w.flags)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != 30 {
		t.Fatalf("found %d of 30", got)
	}
}

// When the appender's connection cannot be had (the server refuses the
// login), messages go through the shared connection, and the next ones do
// not each try again: every Put waits while one is tried.
func TestAppenderConnectFailureCoolsDown(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) { s.caps, s.failLogin = literalPlusCaps, 2 })
	dst := openFake(t, srv, 2)
	for i := range 5 {
		if errs := putN(t, dst, "INBOX", i, 1); errs[0] != nil {
			t.Fatalf("Put %d: %v", i, errs[0])
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.conns) != 2 || len(srv.stored["INBOX"]) != 5 {
		t.Fatalf("%d connections, %d stored; want 2 (the pool's, one refused) and 5", len(srv.conns), len(srv.stored["INBOX"]))
	}
}

// While one mailbox's appender is being made (over a WAN, a third of a
// second of connecting, login and COMPRESS), other mailboxes' messages
// go on through theirs; the held mailbox's wait for it and then use it.
func TestAppenderMadeWhileOthersGoOn(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps = literalPlusCaps
		s.folders["A"], s.folders["B"] = true, true
	})
	// A timeout longer than the test's wait, so that a held dial does not
	// fail over to the shared connections first.
	dst, err := Open(context.Background(), srcimap.Config{Addr: srv.addr, TLS: srcimap.TLSNone, User: "u", Password: "p", Conns: 4, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if errs := putN(t, dst, "B", 0, 2); errs[0] != nil || errs[1] != nil {
		t.Fatalf("B: %v", errs)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := sync.OnceFunc(func() { close(release) })
	defer free() // a test failed early leaves no connection held
	srv.mu.Lock()
	srv.loginGate = func() {
		once.Do(func() { close(held) })
		<-release
	}
	srv.mu.Unlock()
	aDone := make(chan []error, 1)
	go func() { aDone <- putN(t, dst, "A", 10, 2) }()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("A's appender never dialled")
	}
	bDone := make(chan []error, 1)
	go func() { bDone <- putN(t, dst, "B", 20, 2) }()
	select {
	case errs := <-bDone:
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("B while A's appender is made: %v", errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B's messages waited for A's appender to be made")
	}
	select {
	case <-aDone:
		t.Fatal("A's messages did not wait for their appender")
	default:
	}
	free()
	if errs := <-aDone; errs[0] != nil || errs[1] != nil {
		t.Fatalf("A: %v", errs)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.stored["A"]) != 2 || len(srv.stored["B"]) != 4 {
		t.Fatalf("stored A %d, B %d; want 2 and 4", len(srv.stored["A"]), len(srv.stored["B"]))
	}
	for i, c := range srv.conns {
		if c.mailboxes["A"] > 0 && len(c.mailboxes) > 1 {
			t.Errorf("connection %d stored A's messages with others' (%v): not through A's appender", i+1, c.mailboxes)
		}
	}
}

// Warm makes a mailbox's appender before any message is put there (over a
// WAN, its dial and login overlap the source's first reads), and the
// first message goes down it: no connection more than without Warm.
func TestWarmMakesTheAppender(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps = literalPlusCaps
		s.folders["A"] = true
	})
	dst := openFake(t, srv, 4)
	dst.Warm(context.Background(), "A")
	deadline := time.Now().Add(10 * time.Second)
	for {
		dst.apMu.Lock()
		a := dst.appenders["A"]
		ready := a != nil && a.making == nil
		dst.apMu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no appender for A after Warm")
		}
		time.Sleep(time.Millisecond)
	}
	srv.mu.Lock()
	warmed := len(srv.conns)
	srv.mu.Unlock()
	if warmed != 2 {
		t.Fatalf("%d connections after Warm, want 2 (the pool's, A's appender)", warmed)
	}
	if errs := putN(t, dst, "A", 0, 3); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if n := srv.conns[1].mailboxes["A"]; n != 3 || len(srv.stored["A"]) != 3 {
		t.Errorf("the warmed appender took %d of A's messages, %d stored; want 3 and 3", n, len(srv.stored["A"]))
	}
}

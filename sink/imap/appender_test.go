package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
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

func putN(t *testing.T, dst *Sink, folder string, from, n int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", from+i, strings.Repeat("x", 5000)) // over 4 KB: go-imap would wait for "+"
			_, errs[i] = dst.Put(context.Background(), folder, source.Message{Size: int64(len(body))}, strings.NewReader(body))
		}()
	}
	wg.Wait()
	return errs
}

// With LITERAL+, a mailbox's messages go down one connection of their own,
// several at once, none waiting for the server's "+": this fake never
// sends one to {n+}, and holds its answers until three APPENDs are in, so
// a client that waited for either would time out.
func TestAppenderPipelines(t *testing.T) {
	srv := startAppendServer(t, nil, func(s *appendServer) {
		s.caps, s.holdN = literalPlusCaps, 3
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
		if len(c.mailboxes) != 1 || c.plus != c.appends {
			t.Errorf("connection %d: APPENDs into %v, %d of %d with LITERAL+", i, c.mailboxes, c.plus, c.appends)
		}
	}
	if writers != 2 {
		t.Errorf("%d connections appended, want one per mailbox", writers)
	}
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

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"M1 OK [APPENDUID 9 3] done\r\n", "M1 OK [APPENDUID 9 3] done"},
		{"* 3 FETCH (FLAGS (\\Seen) X {5}\r\nab\r\nc Y)\r\nM2 OK done\r\n", "* 3 FETCH (FLAGS (\\Seen) X  Y)"},
		{"M3 NO bare LF\n", "M3 NO bare LF"},
	} {
		got, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)))
		if err != nil || got != tt.want {
			t.Errorf("readResponse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTagged(t *testing.T) {
	for _, tt := range []struct {
		in       string
		uv       uint32
		uid      imap.UID
		typ      imap.StatusResponseType
		code     imap.ResponseCode
		bad      bool
		errorful bool
	}{
		{in: "OK [APPENDUID 38505 3955] APPEND completed", uv: 38505, uid: 3955},
		{in: "OK done"},
		{in: "ok [appenduid 1 2] lower case", uv: 1, uid: 2},
		{in: "NO [TRYCREATE] no such mailbox", typ: imap.StatusResponseTypeNo, code: imap.ResponseCodeTryCreate, errorful: true},
		{in: "NO [OVERQUOTA] quota", typ: imap.StatusResponseTypeNo, code: imap.ResponseCodeOverQuota, errorful: true},
		{in: "BAD Suggested Backoff Time: 30 milliseconds", typ: imap.StatusResponseTypeBad, bad: true, errorful: true},
		{in: "PREAUTH what", bad: true, errorful: true},
	} {
		r, bad := parseTagged(tt.in)
		var ie *imap.Error
		if r.uidValidity != tt.uv || r.uid != tt.uid || bad != tt.bad || (r.err != nil) != tt.errorful ||
			(tt.typ != "" && (!errors.As(r.err, &ie) || ie.Type != tt.typ || ie.Code != tt.code)) {
			t.Errorf("parseTagged(%q) = %+v, bad %v", tt.in, r, bad)
		}
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
		size := []int{100, 5000, 70000, literalPlusMax + 10}[i%4]
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

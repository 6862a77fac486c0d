package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// fakeMailbox answers UID FETCH and UID SEARCH from its bodies (UIDVALIDITY
// 7, as the fake's SELECT says) and records the UID sets asked for.
type fakeMailbox struct {
	mu       sync.Mutex
	bodies   map[imap.UID]string
	uidAfter map[imap.UID]bool // answered with UID after the literal (audit #4)
	nilBody  map[imap.UID]bool // answered BODY[] NIL (expunged elsewhere, Dovecot)
	fetches  []string
	fetched  chan string
}

func newFakeMailbox(n int) *fakeMailbox {
	m := &fakeMailbox{bodies: map[imap.UID]string{}, uidAfter: map[imap.UID]bool{}, nilBody: map[imap.UID]bool{}, fetched: make(chan string, 100)}
	for uid := 1; uid <= n; uid++ {
		m.bodies[imap.UID(uid)] = fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", uid, strings.Repeat("x", 80))
	}
	return m
}

func parseUIDs(set string) []imap.UID {
	var out []imap.UID
	for _, r := range strings.Split(set, ",") {
		a, b, ok := strings.Cut(r, ":")
		lo, _ := strconv.Atoi(a)
		hi := lo
		if ok {
			hi, _ = strconv.Atoi(b)
		}
		for u := lo; u <= hi; u++ {
			out = append(out, imap.UID(u))
		}
	}
	return out
}

func (m *fakeMailbox) fetch(w *bufio.Writer, tag, set string) {
	m.mu.Lock()
	m.fetches = append(m.fetches, set)
	for _, uid := range parseUIDs(set) {
		b, ok := m.bodies[uid]
		switch {
		case m.nilBody[uid]:
			fmt.Fprintf(w, "* %d FETCH (UID %d BODY[] NIL)\r\n", uid, uid)
		case !ok: // expunged: no response
		case m.uidAfter[uid]:
			fmt.Fprintf(w, "* %d FETCH (BODY[] {%d}\r\n%s UID %d)\r\n", uid, len(b), b, uid)
		default:
			fmt.Fprintf(w, "* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n", uid, uid, len(b), b)
		}
	}
	m.mu.Unlock()
	fmt.Fprintf(w, "%s OK done\r\n", tag)
	m.fetched <- set
}

func (m *fakeMailbox) search(w *bufio.Writer, tag, set string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.WriteString("* SEARCH")
	for _, uid := range parseUIDs(set) {
		if _, ok := m.bodies[uid]; ok {
			fmt.Fprintf(w, " %d", uid)
		}
	}
	fmt.Fprintf(w, "\r\n%s OK done\r\n", tag)
}

func (m *fakeMailbox) list(uids ...imap.UID) []source.Message {
	var out []source.Message
	for _, uid := range uids {
		size := int64(len(m.bodies[uid]))
		if size == 0 {
			size = 90
		}
		out = append(out, source.Message{Folder: "INBOX", ID: MessageID(7, uid), Size: size})
	}
	return out
}

func (m *fakeMailbox) waitFetch(t *testing.T) string {
	t.Helper()
	select {
	case set := <-m.fetched:
		return set
	case <-time.After(5 * time.Second):
		t.Fatal("no UID FETCH came")
		return ""
	}
}

func uids(from, to int) []imap.UID {
	var out []imap.UID
	for u := from; u <= to; u++ {
		out = append(out, imap.UID(u))
	}
	return out
}

// readMsg opens and reads m, failing the test unless it gets want.
func readMsg(t *testing.T, s *Store, m source.Message, want string) {
	t.Helper()
	r, err := s.Open(context.Background(), m)
	if err != nil {
		t.Fatalf("open %s: %v", m.ID, err)
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil || string(b) != want {
		t.Fatalf("message %s: read %q, %v; want %q", m.ID, b, err, want)
	}
}

// waitIdle waits for the read-ahead to finish and checks it holds nothing.
func waitIdle(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.ahead.mu.Lock()
		running, used, entries := len(s.ahead.queues), s.ahead.used, len(s.ahead.entries)
		s.ahead.mu.Unlock()
		if running == 0 && used == 0 && entries == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read-ahead not idle: %d running, %d bytes held, %d entries", running, used, entries)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPrefetchReadsManyInOneFetch(t *testing.T) {
	mb := newFakeMailbox(20)
	s := fakeStore(t, &fakeServer{mailbox: mb})
	msgs := mb.list(uids(1, 20)...)
	s.Prefetch(context.Background(), "INBOX", msgs)
	if set := mb.waitFetch(t); set != "1:20" {
		t.Fatalf("read-ahead asked for %q, want 1:20", set)
	}
	for _, m := range msgs {
		_, uid, _ := ParseID(m.ID)
		readMsg(t, s, m, mb.bodies[uid])
	}
	if len(mb.fetches) != 1 {
		t.Errorf("UID FETCHes: %q, want the one ranged", mb.fetches)
	}
	waitIdle(t, s)
}

// Messages opened the moment Prefetch returns (a planner hands them to
// its workers then) wait for the read-ahead: none is read by a UID FETCH
// of its own, which holds a connection per message.
func TestPrefetchAskedBeforeItReturns(t *testing.T) {
	mb := newFakeMailbox(20)
	s := fakeStore(t, &fakeServer{mailbox: mb})
	msgs := mb.list(uids(1, 20)...)
	s.Prefetch(context.Background(), "INBOX", msgs)
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Open(context.Background(), m)
			if err != nil {
				errs[i] = err
				return
			}
			_, uid, _ := ParseID(m.ID)
			if b, err := io.ReadAll(r); err != nil || string(b) != mb.bodies[uid] {
				errs[i] = fmt.Errorf("message %s: read %q, %v", m.ID, b, err)
			}
			r.Close()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if len(mb.fetches) != 1 || mb.fetches[0] != "1:20" {
		t.Errorf("UID FETCHes %q, want the one ranged, 1:20", mb.fetches)
	}
}

// What the read-ahead does not get, Open reads itself, with the same
// outcome as without a read-ahead: a response go-imap drops (audit #4) is
// an error, an expunged message is ErrMessageNotFound, whether the server
// leaves it out or answers NIL.
func TestPrefetchFallsBackPerMessage(t *testing.T) {
	mb := newFakeMailbox(3)
	mb.uidAfter[2] = true
	s := fakeStore(t, &fakeServer{mailbox: mb})
	mb.nilBody[5] = true
	msgs := mb.list(1, 2, 3, 4, 5) // 4 and 5 are expunged
	s.Prefetch(context.Background(), "INBOX", msgs)
	mb.waitFetch(t)
	readMsg(t, s, msgs[0], mb.bodies[1])
	readMsg(t, s, msgs[2], mb.bodies[3])
	if r, err := s.Open(context.Background(), msgs[1]); err == nil || errors.Is(err, source.ErrMessageNotFound) {
		if r != nil {
			r.Close()
		}
		t.Errorf("message 2, dropped by go-imap: Open gave %v; want an error other than not-found", err)
	}
	if _, err := s.Open(context.Background(), msgs[3]); !errors.Is(err, source.ErrMessageNotFound) {
		t.Errorf("message 4, expunged: Open gave %v; want ErrMessageNotFound", err)
	}
	if _, err := s.Open(context.Background(), msgs[4]); !errors.Is(err, source.ErrMessageNotFound) {
		t.Errorf("message 5, BODY[] NIL: Open gave %v; want ErrMessageNotFound", err)
	}
	if want := []string{"1:5", "2", "4", "5"}; strings.Join(mb.fetches, " ") != strings.Join(want, " ") {
		t.Errorf("UID FETCHes %q, want %q", mb.fetches, want)
	}
	waitIdle(t, s)
}

// The read-ahead holds at most its limit; a message it has not asked for
// yet is read by Open at once, not waited for, so bodies nobody opens yet
// cannot stall the copy.
func TestPrefetchBoundedMemory(t *testing.T) {
	mb := newFakeMailbox(10)
	s := fakeStore(t, &fakeServer{mailbox: mb})
	size := int64(len(mb.bodies[1]))
	s.ahead.limit = 3 * size
	msgs := mb.list(uids(1, 10)...)
	s.Prefetch(context.Background(), "INBOX", msgs)
	if set := mb.waitFetch(t); set != "1:3" {
		t.Fatalf("first read-ahead asked for %q, want 1:3 (the limit holds three)", set)
	}
	readMsg(t, s, msgs[4], mb.bodies[5]) // not asked yet: read directly
	if set := mb.waitFetch(t); set != "5" {
		t.Fatalf("Open of a message not read ahead asked for %q, want 5", set)
	}
	for i, m := range msgs {
		if i != 4 {
			readMsg(t, s, m, mb.bodies[imap.UID(i+1)])
		}
	}
	waitIdle(t, s)
	if s.ahead.peak > s.ahead.limit {
		t.Errorf("read-ahead held %d bytes, over its limit of %d", s.ahead.peak, s.ahead.limit)
	}
	for _, set := range mb.fetches {
		if strings.Contains(set, "5") && set != "5" {
			t.Errorf("message 5 was read ahead after Open took it: %q", mb.fetches)
		}
	}
}

// Once its room has filled, the read-ahead asks again only when a
// quarter of it is free, so that it asks for several messages at once,
// not one for each body freed.
func TestPrefetchRefillsAQuarterAtOnce(t *testing.T) {
	mb := newFakeMailbox(12)
	s := fakeStore(t, &fakeServer{mailbox: mb})
	size := int64(len(mb.bodies[1]))
	s.ahead.limit = 8*size + 8 // bodies 10 and on are a byte longer
	msgs := mb.list(uids(1, 12)...)
	s.Prefetch(context.Background(), "INBOX", msgs)
	if set := mb.waitFetch(t); set != "1:8" {
		t.Fatalf("first read-ahead asked for %q, want 1:8 (the room holds eight)", set)
	}
	readMsg(t, s, msgs[0], mb.bodies[1]) // an eighth free: not yet
	select {
	case set := <-mb.fetched:
		t.Fatalf("read-ahead asked for %q with an eighth of its room free", set)
	case <-time.After(100 * time.Millisecond): // a fetch too early comes well within this
	}
	readMsg(t, s, msgs[1], mb.bodies[2]) // a quarter
	if set := mb.waitFetch(t); set != "9:10" {
		t.Fatalf("read-ahead asked for %q once a quarter was free, want 9:10", set)
	}
	for i, m := range msgs[2:] {
		readMsg(t, s, m, mb.bodies[imap.UID(i+3)])
	}
	waitIdle(t, s)
	for _, set := range mb.fetches {
		if !strings.Contains(set, ":") {
			t.Errorf("UID FETCHes %q: one of a single message", mb.fetches)
		}
	}
}

// A body's room is given back once it is read to the end, before Close:
// a sink copies what it reads, then waits on its destination.
func TestPrefetchRoomFreedAtEnd(t *testing.T) {
	for _, tt := range []struct {
		name string
		read func(io.Reader) ([]byte, error)
	}{
		{"read to the end", io.ReadAll},
		{"copied (WriteTo)", func(r io.Reader) ([]byte, error) {
			if _, ok := r.(io.WriterTo); !ok {
				return nil, fmt.Errorf("%T has no WriteTo", r)
			}
			var b bytes.Buffer
			_, err := io.Copy(&b, r)
			return b.Bytes(), err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mb := newFakeMailbox(3)
			s := fakeStore(t, &fakeServer{mailbox: mb})
			msgs := mb.list(uids(1, 3)...)
			s.Prefetch(context.Background(), "INBOX", msgs)
			mb.waitFetch(t)
			r, err := s.Open(context.Background(), msgs[0])
			if err != nil {
				t.Fatal(err)
			}
			held := func() int64 {
				s.ahead.mu.Lock()
				defer s.ahead.mu.Unlock()
				return s.ahead.used
			}
			before := held()
			if b, err := tt.read(r); err != nil || string(b) != mb.bodies[1] {
				t.Fatalf("read %q, %v", b, err)
			}
			if got, want := held(), before-int64(len(mb.bodies[1])); got != want {
				t.Errorf("%s, not closed: %d bytes held, want %d (its room given back)", tt.name, got, want)
			}
			r.Close() // gives nothing back twice
			if got, want := held(), before-int64(len(mb.bodies[1])); got != want {
				t.Errorf("after Close: %d bytes held, want %d", got, want)
			}
			readMsg(t, s, msgs[1], mb.bodies[2])
			readMsg(t, s, msgs[2], mb.bodies[3])
			waitIdle(t, s)
		})
	}
}

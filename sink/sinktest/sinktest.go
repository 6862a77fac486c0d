// Package sinktest is the conformance suite every sink.Sink runs. A sink is
// also a source, so Run runs sourcetest.Run on it too, seeding with Put.
package sinktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// Opt describes the sink under test.
type Opt struct {
	// New returns an empty store.
	New func(t *testing.T) sink.Sink
	// Reopen returns a new instance on the store New made last.
	Reopen func(t *testing.T) sink.Sink
	// Remove deletes a message behind the sink's back.
	Remove func(t *testing.T, m source.Message)

	NoKeywords bool
	// Fixtures replaces sourcetest.DefaultFixtures when set.
	Fixtures func(t *testing.T) []sourcetest.Fixture
}

// Put stores fx in s, failing the test on error.
func Put(t testing.TB, s sink.Sink, fx []sourcetest.Fixture) {
	t.Helper()
	ctx := context.Background()
	for _, f := range fx {
		if err := s.CreateFolder(ctx, f.Folder); err != nil {
			t.Fatalf("CreateFolder(%q): %v", f.Folder, err)
		}
		m := source.Message{Folder: f.Folder, Flags: f.Flags, Date: f.Date, Size: int64(len(f.Content))}
		if _, err := s.Put(ctx, f.Folder, m, bytes.NewReader(f.Content)); err != nil {
			t.Fatalf("Put %s: %v", f.Name, err)
		}
	}
}

// Run runs the sink conformance tests.
func Run(t *testing.T, opt Opt) {
	t.Run("Source", func(t *testing.T) {
		var reopen func(t *testing.T) source.Source
		if opt.Reopen != nil {
			reopen = func(t *testing.T) source.Source { return opt.Reopen(t) }
		}
		sourcetest.Run(t, sourcetest.Opt{
			New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
				s := opt.New(t)
				Put(t, s, fx)
				return s
			},
			Reopen:     reopen,
			Remove:     opt.Remove,
			NoKeywords: opt.NoKeywords,
			Fixtures:   opt.Fixtures,
		})
	})

	ctx := context.Background()
	msg := []byte("From: a@example.com\r\nSubject: sink test\r\nMessage-ID: <sinktest@example.com>\r\n\r\nbody line\r\n")
	date := time.Date(2020, 2, 29, 23, 59, 59, 0, time.UTC)
	newMsg := func(size int64) source.Message {
		return source.Message{Folder: "Box", Flags: []string{`\Seen`}, Date: date, Size: size}
	}
	count := func(t *testing.T, s sink.Sink, folder string) int {
		n := 0
		err := s.List(ctx, folder, func(source.Message) error { n++; return nil })
		if err != nil && !errors.Is(err, source.ErrFolderNotFound) {
			t.Fatalf("List(%q): %v", folder, err)
		}
		return n
	}

	t.Run("CreateFolder", func(t *testing.T) {
		s := opt.New(t)
		defer s.Close()
		for _, f := range []string{"A/B/C", "A/B/C", "Entwürfe", "A & B", "INBOX"} {
			if err := s.CreateFolder(ctx, f); err != nil {
				t.Fatalf("CreateFolder(%q): %v", f, err)
			}
		}
		got, err := s.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range got {
			names = append(names, f.Name)
		}
		for _, want := range []string{"A/B/C", "Entwürfe", "A & B"} {
			if !slices.Contains(names, want) {
				t.Errorf("folder %q not listed after CreateFolder; got %q", want, names)
			}
		}
	})

	// A body shorter or longer than declared, a failing reader and a
	// cancelled context must each fail Put and leave nothing behind.
	failures := []struct {
		name string
		size int64
		r    func() io.Reader
		ctx  func() context.Context
	}{
		{"ShortBody", int64(len(msg)) + 10, func() io.Reader { return bytes.NewReader(msg) }, nil},
		{"LongBody", int64(len(msg)) - 10, func() io.Reader { return bytes.NewReader(msg) }, nil},
		{"ReaderError", int64(len(msg)) * 2, func() io.Reader {
			return io.MultiReader(bytes.NewReader(msg), iotest.ErrReader(errors.New("source went away")))
		}, nil},
		{"Cancelled", int64(len(msg)) * 2, func() io.Reader { return bytes.NewReader(msg) }, func() context.Context {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c
		}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			s := opt.New(t)
			defer s.Close()
			if err := s.CreateFolder(ctx, "Box"); err != nil {
				t.Fatal(err)
			}
			c := ctx
			if tt.ctx != nil {
				c = tt.ctx()
			}
			_, err := s.Put(c, "Box", newMsg(tt.size), tt.r())
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if (tt.name == "ShortBody" || tt.name == "LongBody") && !errors.Is(err, source.ErrSizeMismatch) {
				t.Errorf("Put: %v, want ErrSizeMismatch", err)
			}
			if n := count(t, s, "Box"); n != 0 {
				t.Fatalf("after a failed Put the folder lists %d messages", n)
			}
			// The sink must still work after a failure.
			if _, err := s.Put(ctx, "Box", newMsg(int64(len(msg))), bytes.NewReader(msg)); err != nil {
				t.Fatalf("Put after a failed Put: %v", err)
			}
			if n := count(t, s, "Box"); n != 1 {
				t.Fatalf("folder lists %d messages, want 1", n)
			}
		})
	}

	t.Run("PutReturnsListedID", func(t *testing.T) {
		s := opt.New(t)
		defer s.Close()
		id, err := s.Put(ctx, "Box", newMsg(int64(len(msg))), bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		s.List(ctx, "Box", func(m source.Message) error { ids = append(ids, m.ID); return nil })
		if len(ids) != 1 || ids[0] != id {
			t.Fatalf("Put returned %q, List shows %q", id, ids)
		}
	})

	t.Run("NoDedup", func(t *testing.T) {
		s := opt.New(t)
		defer s.Close()
		for range 2 {
			if _, err := s.Put(ctx, "Box", newMsg(int64(len(msg))), bytes.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, s, "Box"); n != 2 {
			t.Fatalf("two Puts of one message: %d listed, want 2", n)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := opt.New(t)
		defer s.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Replace(msg, []byte("body line"), []byte(strings.Repeat("x", i)), 1)
				m := newMsg(int64(len(body)))
				m.Folder = []string{"Box", "Other"}[i%2]
				_, err := s.Put(ctx, m.Folder, m, bytes.NewReader(body))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if a, b := count(t, s, "Box"), count(t, s, "Other"); a != 16 || b != 16 {
			t.Fatalf("listed %d and %d, want 16 and 16", a, b)
		}
	})

	t.Run("SetFlags", func(t *testing.T) {
		s := opt.New(t)
		defer s.Close()
		fsetter, ok := s.(sink.FlagSetter)
		if !ok {
			t.Skip("sink does not implement sink.FlagSetter")
		}
		id, err := s.Put(ctx, "Box", newMsg(int64(len(msg))), bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`\Answered`, `\Flagged`, "$Forwarded", "Work"}
		if opt.NoKeywords {
			want = want[:2]
		}
		if err := fsetter.SetFlags(ctx, "Box", id, want); err != nil {
			t.Fatal(err)
		}
		var got []source.Message
		s.List(ctx, "Box", func(m source.Message) error { got = append(got, m); return nil })
		if len(got) != 1 || got[0].ID != id || !source.SameFlags(got[0].Flags, want) {
			t.Fatalf("after SetFlags: %+v, want ID %q flags %q", got, id, want)
		}
	})
}

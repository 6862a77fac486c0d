package sourcetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/source"
)

// Opt describes the store under test and what it cannot do.
type Opt struct {
	// New returns a store holding exactly the fixtures (and, if the store
	// always has one, an empty INBOX).
	New func(t *testing.T, fx []Fixture) source.Source
	// Reopen returns a new instance on the store New made last, to check
	// that IDs survive it. Nil: the check is not made.
	Reopen func(t *testing.T) source.Source
	// Remove deletes a message behind the source's back, to check Open of
	// a vanished message. Nil: the check is not made.
	Remove func(t *testing.T, m source.Message)

	NoFlags       bool          // the store has no flags (POP3)
	NoKeywords    bool          // system flags only
	NoDates       bool          // the store has no received date (POP3)
	DatePrecision time.Duration // default 1s (IMAP INTERNALDATE)
	SingleFolder  bool          // everything is in INBOX (POP3)
	// Fixtures replaces the default fixtures (Corpus + Generated) when set.
	Fixtures func(t *testing.T) []Fixture
}

// DefaultFixtures is the whole corpus plus the generated cases, in a nested
// folder.
func DefaultFixtures(t *testing.T) []Fixture {
	return append(Corpus(t), Generated("Generated/Awkward")...)
}

// Run runs the source conformance tests.
func Run(t *testing.T, opt Opt) {
	if opt.DatePrecision == 0 {
		opt.DatePrecision = time.Second
	}
	fixtures := opt.Fixtures
	if fixtures == nil {
		fixtures = DefaultFixtures
	}
	fx := fixtures(t)
	if opt.SingleFolder {
		for i := range fx {
			fx[i].Folder = "INBOX"
		}
	}
	src := opt.New(t, fx)
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()

	t.Run("Folders", func(t *testing.T) {
		got, err := src.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range got {
			names = append(names, f.Name)
		}
		want := Folders(fx)
		for _, w := range want {
			if !slices.Contains(names, w) {
				t.Errorf("folder %q missing; Folders() = %q", w, names)
			}
		}
		for _, n := range names {
			if !slices.Contains(want, n) && n != "INBOX" {
				t.Errorf("unexpected folder %q", n)
			}
		}
	})

	var listed []source.Message
	t.Run("ListAndOpen", func(t *testing.T) {
		listed = checkContents(t, src, fx, opt, false)
	})

	// A source that reads ahead must give the same bytes with it.
	if _, ok := src.(source.Prefetcher); ok {
		t.Run("ListAndOpenPrefetched", func(t *testing.T) {
			checkContents(t, src, fx, opt, true)
		})
	}

	t.Run("StableIDs", func(t *testing.T) {
		again := listAll(t, src, Folders(fx))
		if !sameIDs(listed, again) {
			t.Fatalf("IDs differ between two List calls")
		}
		if opt.Reopen == nil {
			return
		}
		s2 := opt.Reopen(t)
		defer s2.Close()
		reopened := listAll(t, s2, Folders(fx))
		if !sameIDs(listed, reopened) {
			t.Fatalf("IDs differ after reopening the store")
		}
	})

	t.Run("ListStopsOnError", func(t *testing.T) {
		stop := errors.New("stop here")
		n := 0
		err := src.List(ctx, fx[0].Folder, func(source.Message) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("List returned %v after %d calls; want the callback's error after 1", err, n)
		}
	})

	t.Run("ListCancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := src.List(cctx, fx[0].Folder, func(source.Message) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("List with a cancelled context: %v, want context.Canceled", err)
		}
	})

	if !opt.SingleFolder {
		t.Run("MissingFolder", func(t *testing.T) {
			err := src.List(ctx, "No/Such/Folder", func(source.Message) error { return nil })
			if !errors.Is(err, source.ErrFolderNotFound) {
				t.Fatalf("List of a missing folder: %v, want ErrFolderNotFound", err)
			}
		})
	}

	if opt.Remove != nil && len(listed) > 0 {
		t.Run("OpenVanished", func(t *testing.T) {
			m := listed[0]
			opt.Remove(t, m)
			r, err := src.Open(ctx, m)
			if err == nil {
				r.Close()
			}
			if !errors.Is(err, source.ErrMessageNotFound) {
				t.Fatalf("Open of a removed message: %v, want ErrMessageNotFound", err)
			}
		})
	}
}

func listAll(t *testing.T, src source.Source, folders []string) []source.Message {
	t.Helper()
	var out []source.Message
	for _, f := range folders {
		if err := src.List(context.Background(), f, func(m source.Message) error {
			out = append(out, m)
			return nil
		}); err != nil {
			t.Fatalf("List(%q): %v", f, err)
		}
	}
	return out
}

func sameIDs(a, b []source.Message) bool {
	ids := func(ms []source.Message) []string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Folder+"\x00"+m.ID)
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(ids(a), ids(b))
}

// checkContents lists every folder and matches each message to a fixture
// by its content (line endings aside): every fixture exactly once, nothing
// else, with flags, dates and sizes. With prefetch, each folder's messages
// are first handed to the source's Prefetch, in the order they are opened.
func checkContents(t *testing.T, src source.Source, fx []Fixture, opt Opt, prefetch bool) []source.Message {
	t.Helper()
	type slot struct {
		f    Fixture
		used bool
	}
	byHash := map[string][]*slot{}
	hash := func(folder string, b []byte) string {
		h := sha256.Sum256(eol.Canonical(b))
		return folder + "\x00" + string(h[:])
	}
	for _, f := range fx {
		k := hash(f.Folder, f.Content)
		byHash[k] = append(byHash[k], &slot{f: f})
	}
	listed := listAll(t, src, Folders(fx))
	if pf, ok := src.(source.Prefetcher); ok && prefetch {
		byFolder := map[string][]source.Message{}
		for _, m := range listed {
			byFolder[m.Folder] = append(byFolder[m.Folder], m)
		}
		for folder, msgs := range byFolder {
			pf.Prefetch(context.Background(), folder, msgs)
		}
	}
	ids := map[string]bool{}
	for _, m := range listed {
		if ids[m.Folder+"\x00"+m.ID] {
			t.Errorf("folder %q: ID %q listed twice", m.Folder, m.ID)
		}
		ids[m.Folder+"\x00"+m.ID] = true
		body, err := readMessage(src, m)
		if err != nil {
			t.Errorf("folder %q: open %q: %v", m.Folder, m.ID, err)
			continue
		}
		if m.Size >= 0 && m.Size != int64(len(body)) {
			t.Errorf("folder %q: %q: Size %d, but Open gave %d bytes", m.Folder, m.ID, m.Size, len(body))
		}
		// Byte-identical twins are told apart by flags and date.
		score := func(f Fixture) int {
			n := 0
			if flagsMatch(f.Flags, m.Flags, opt) {
				n++
			}
			if d := m.Date.Sub(f.Date); d >= -opt.DatePrecision && d <= opt.DatePrecision {
				n++
			}
			return n
		}
		var match *slot
		for _, c := range byHash[hash(m.Folder, body)] {
			if !c.used && (match == nil || score(c.f) > score(match.f)) {
				match = c
			}
		}
		if match == nil {
			t.Errorf("folder %q: %q has content that was not seeded there (or was listed twice): %q", m.Folder, m.ID, clip(body))
			continue
		}
		match.used = true
		f := match.f
		if !opt.NoFlags && !flagsMatch(f.Flags, m.Flags, opt) {
			t.Errorf("%s: flags %q, want %q", f.Name, m.Flags, f.Flags)
		}
		if !opt.NoDates {
			if d := m.Date.Sub(f.Date); d < -opt.DatePrecision || d > opt.DatePrecision || m.Date.IsZero() {
				t.Errorf("%s: date %v, want %v", f.Name, m.Date, f.Date)
			}
		}
		if m.MessageIDKnown {
			// A source that reports the Message-ID must report the one in
			// the header.
			want, _, _ := header.MessageID(bytes.NewReader(body))
			if header.NormalizeMessageID(m.MessageID) != header.NormalizeMessageID(want) {
				t.Errorf("%s: MessageID %q, header has %q", f.Name, m.MessageID, want)
			}
		}
	}
	for _, slots := range byHash {
		for _, s := range slots {
			if !s.used {
				t.Errorf("%s: missing from folder %q (content %q)", s.f.Name, s.f.Folder, clip(s.f.Content))
			}
		}
	}
	return listed
}

func readMessage(src source.Source, m source.Message) ([]byte, error) {
	r, err := src.Open(context.Background(), m)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func flagsMatch(want, got []string, opt Opt) bool {
	if opt.NoKeywords {
		sys := func(fs []string) []string {
			var out []string
			for _, f := range fs {
				if strings.HasPrefix(f, `\`) {
					out = append(out, f)
				}
			}
			return out
		}
		want, got = sys(want), sys(got)
	}
	return source.SameFlags(want, got)
}

func clip(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%s... (%d bytes)", b[:80], len(b))
	}
	return string(b)
}

package mbox

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
)

// The mbox sink keeps every corpus message byte for byte (line endings
// aside), with its flags, keywords and date, in either layout.
func TestConformance(t *testing.T) {
	for name, layout := range map[string]Layout{"mbox": LayoutMbox, "thunderbird": LayoutThunderbird} {
		t.Run(name, func(t *testing.T) {
			var root string
			open := func(t *testing.T) sink.Sink {
				s, err := New(root, layout, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			sinktest.Run(t, sinktest.Opt{
				New: func(t *testing.T) sink.Sink {
					root = filepath.Join(t.TempDir(), "archive")
					return open(t)
				},
				Reopen: open,
			})
		})
	}
}

func put(t *testing.T, s *Sink, folder, body string) string {
	t.Helper()
	id, err := s.Put(context.Background(), folder, source.Message{Folder: folder, Size: int64(len(body)), Flags: []string{source.FlagSeen, "$Work"}, Date: time.Unix(1700000000, 0)}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func bodies(t *testing.T, s *Sink, folder string) []string {
	t.Helper()
	var out []string
	err := s.List(context.Background(), folder, func(m source.Message) error {
		r, err := s.Open(context.Background(), m)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A message cut short by a crash mid-append is cut off by the next run's
// first append to that file; the messages before it, and the file's
// blank-line separators, are kept. The file is 0600, and another mbox
// reader sees each message behind a From_ line with its flags as
// Status/X-Status/X-Keywords headers.
func TestTornAppendCutOff(t *testing.T) {
	root := filepath.Join(t.TempDir(), "archive")
	s, err := New(root, LayoutMbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "INBOX", "Subject: one\n\nFrom the start\n")
	put(t, s, "INBOX", "Subject: two\n\nno final line break")
	full := filepath.Join(root, "INBOX.mbox")
	before, _ := os.ReadFile(full)
	put(t, s, "INBOX", "Subject: three\n\n"+strings.Repeat("long line\n", 1000))
	s.Close()
	after, _ := os.ReadFile(full)
	for cut := len(before) + 1; cut < len(after); cut += 97 { // within the third append
		os.WriteFile(full, after[:cut], 0o600)
		s, err := New(root, LayoutMbox, nil)
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "INBOX", "Subject: four\n\nbody\n")
		got := bodies(t, s, "INBOX")
		want := []string{"Subject: one\n\nFrom the start\n", "Subject: two\n\nno final line break", "Subject: four\n\nbody\n"}
		if !slices.Equal(got, want) {
			t.Fatalf("cut at %d: INBOX holds %q, want %q", cut, got, want)
		}
		s.Close()
	}
	fi, _ := os.Stat(full)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(full)
	if !strings.HasPrefix(string(b), "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\nStatus: RO\nX-Status: \nX-Keywords: $Work\nX-Mailferry-Length: 30\nSubject: one\n\n>From the start\n\nFrom ") {
		t.Errorf("file starts %q", b[:min(len(b), 200)])
	}
}

// A folder name that would leave the tree, or read back as another
// folder, is refused by name.
func TestFolderNamesRefused(t *testing.T) {
	s, err := New(t.TempDir(), LayoutMbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "a/../../x", ".hidden", "a//b", "Old.mbox", "x.sbd/y", "bad\x1b", `a\b`} {
		if err := s.CreateFolder(context.Background(), name); !errors.Is(err, errBadName) {
			t.Errorf("%q: %v", name, err)
		}
	}
}

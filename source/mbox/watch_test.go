package mbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source/sourcetest"
)

// The watcher tells once when its watches are set; then an append to the
// mbox file, a new file in the tree and a file beside a single watched
// file (which must not count) each tell it, or not.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "Inbox")
	msg := "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nx\n\n"
	if err := os.WriteFile(one, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		root string
		do   func()
		want bool
	}{
		{"an append to the watched file", one, func() { appendTo(t, one, msg) }, true},
		{"a file beside the watched file", one, func() { os.WriteFile(filepath.Join(dir, "Other"), []byte(msg), 0o600) }, false},
		{"an append in a tree", dir, func() { appendTo(t, one, msg) }, true},
		{"a new file in a tree", dir, func() { os.WriteFile(filepath.Join(dir, "New"), []byte(msg), 0o600) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			changed, _, stop := sourcetest.StartWatch(t, s)
			defer stop()
			select {
			case <-changed: // the watches are set: what came before went unseen
			case <-time.After(5 * time.Second):
				t.Fatal("not told once watching")
			}
			tt.do()
			select {
			case <-changed:
				if !tt.want {
					t.Error("told of a change it should not see")
				}
			case <-time.After(500 * time.Millisecond):
				if tt.want {
					t.Error("not told of the change")
				}
			}
		})
	}
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(s)
}

package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source/sourcetest"
)

// The watcher tells once when its watches are set; then a message
// delivered into any folder (written in tmp/, renamed into new/), a flag
// change (a rename in cur/) and a new folder each tell the
// watcher; a file written in tmp/ alone does not.
func TestWatch(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp", ".Work/cur", ".Work/new", ".Work/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(root, LayoutMaildirPP)
	if err != nil {
		t.Fatal(err)
	}
	changed, _, stop := sourcetest.StartWatch(t, s)
	select {
	case <-changed: // the watches are set: what came before went unseen
	case <-time.After(5 * time.Second):
		t.Fatal("not told once watching")
	}
	drain := func() int {
		n := 0
		for {
			select {
			case <-changed:
				n++
			case <-time.After(200 * time.Millisecond):
				return n
			}
		}
	}
	write := func(p string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte("Subject: x\n\nx\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		what string
		do   func()
		want bool
	}{
		{"written in tmp/ only", func() { write("tmp/1.host") }, false},
		{"delivered into INBOX", func() { os.Rename(filepath.Join(root, "tmp/1.host"), filepath.Join(root, "new/1.host")) }, true},
		{"delivered into Work", func() {
			write(".Work/tmp/2.host")
			os.Rename(filepath.Join(root, ".Work/tmp/2.host"), filepath.Join(root, ".Work/new/2.host"))
		}, true},
		{"a flag change", func() { os.Rename(filepath.Join(root, "new/1.host"), filepath.Join(root, "cur/1.host:2,S")) }, true},
		{"a new folder", func() { os.Mkdir(filepath.Join(root, ".New"), 0o700) }, true},
	} {
		tt.do()
		if got := drain() > 0; got != tt.want {
			t.Errorf("%s: told %v, want %v", tt.what, got, tt.want)
		}
	}
	stop()
}

package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

// A destination never writes through a symbolic link inside its tree: a
// folder linked elsewhere is refused by name, and nothing lands outside.
func TestNoWriteThroughSymlink(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	s, err := New(root, srcmaildir.LayoutMaildirPP, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, filepath.Join(root, ".Leak"))
	body := "Subject: x\n\nx\n"
	_, err = s.Put(context.Background(), "Leak", source.Message{Size: int64(len(body))}, strings.NewReader(body))
	if !errors.Is(err, srcmaildir.ErrSymlink) || !strings.Contains(err.Error(), ".Leak") {
		t.Fatalf("Put through a linked folder: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the tree: %v", ents)
	}
}

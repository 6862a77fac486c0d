package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailferry/mailferry/source"
)

// Count implements source.Counter: the entries of cur/ and new/, read
// without looking at each file.
func (s *Store) Count(ctx context.Context, folder string) (int, error) {
	dir, err := s.Dir(folder)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sub := range []string{"cur", "new"} {
		names, err := readNames(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		for _, name := range names {
			if !strings.HasPrefix(name, ".") {
				n++
			}
		}
	}
	return n, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

var _ source.Counter = (*Store)(nil)

// State implements source.Stater: a message added, removed or renamed (a
// flag change renames its file) changes the mtime of cur/ or new/. A
// directory changed within the last second may change again within the
// same clock tick unseen, so then the answer is "" (list).
func (s *Store) State(ctx context.Context, folder string) (string, error) {
	dir, err := s.Dir(folder)
	if err != nil {
		return "", err
	}
	tok := "maildir"
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			tok += " " + sub + "=absent" // appearing later changes the token
			continue
		}
		if err != nil {
			return "", nil
		}
		if time.Since(fi.ModTime()) < time.Second {
			return "", nil
		}
		tok += fmt.Sprintf(" %s=%d", sub, fi.ModTime().UnixNano())
	}
	return tok, nil
}

var _ source.Stater = (*Store)(nil)

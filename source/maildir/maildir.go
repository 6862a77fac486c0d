// Package maildir reads Maildir stores (Maildir++ as Dovecot keeps them, or
// one directory per folder).
//
// It never changes the store it reads: unlike go-maildir's Dir.Unseen, it
// leaves messages in new/ where they are and keeps the flags their names
// carry.
package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mailferry/mailferry/source"
)

// Store is a Maildir tree. It implements source.Source; sink/maildir builds
// the writing side on it.
type Store struct {
	root   string
	layout Layout

	// Log hears of folders renamed to keep names one to one.
	Log *slog.Logger

	mu    sync.Mutex
	paths map[string]map[string]string // folder -> message ID -> file path, from List
	dirs  map[string]string            // folder -> directory, from Folders
}

// Open opens the Maildir tree at root for reading. root must exist.
func Open(root string, layout Layout) (*Store, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("maildir %q: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("maildir %q: not a directory", root)
	}
	return &Store{root: root, layout: layout, paths: map[string]map[string]string{}, Log: slog.New(slog.DiscardHandler)}, nil
}

// Root returns the directory of the tree.
func (s *Store) Root() string { return s.root }

// Layout returns the folder layout of the tree.
func (s *Store) Layout() Layout { return s.layout }

// Dir returns the directory of folder: the one the last Folders listed
// under that name, else the one the layout gives the name, refusing names
// that would leave the root or that the layout cannot hold.
func (s *Store) Dir(folder string) (string, error) {
	s.mu.Lock()
	d, ok := s.dirs[folder]
	s.mu.Unlock()
	if ok {
		return d, nil
	}
	return dirOf(s.root, s.layout, folder)
}

// Folders implements source.Source.
func (s *Store) Folders(ctx context.Context) ([]source.Folder, error) {
	found, renamed, links, err := folderDirs(s.root, s.layout)
	if err != nil {
		return nil, fmt.Errorf("list folders of %q: %w", s.root, err)
	}
	if len(found) == 0 {
		if other := otherLayouts(s.root, s.layout); other != "" {
			return nil, fmt.Errorf("%w: %q holds no %s folder, but is a tree %s", source.ErrOtherLayout, s.root, s.layout, other)
		}
	}
	dirs := make(map[string]string, len(found))
	out := make([]source.Folder, len(found))
	for i, f := range found {
		dirs[f.name] = f.dir
		out[i] = source.Folder{Name: f.name}
	}
	s.mu.Lock()
	s.dirs = dirs
	s.mu.Unlock()
	for _, l := range links {
		s.Log.Warn("symbolic link in the maildir not followed; that folder is left out", "path", l)
	}
	for _, f := range renamed {
		s.Log.Warn("two folders of the tree have one name; this one is read as a folder of its own under another name", "directory", f.dir, "folder", f.name)
	}
	return out, nil
}

// Maildir info flags (https://cr.yp.to/proto/maildir.html) and their IMAP
// names.
var letterFlags = map[byte]string{
	byte(gomaildir.FlagPassed):  source.FlagForwarded,
	byte(gomaildir.FlagReplied): source.FlagAnswered,
	byte(gomaildir.FlagSeen):    source.FlagSeen,
	byte(gomaildir.FlagTrashed): source.FlagDeleted,
	byte(gomaildir.FlagDraft):   source.FlagDraft,
	byte(gomaildir.FlagFlagged): source.FlagFlagged,
}

// SplitName splits a Maildir file name into the message ID (the part that
// stays when flags change) and the flag letters of a ":2," info suffix. A
// name without info, or with an info of another version (":1,", ":3,"), is
// still a message: it has no flags we understand.
func SplitName(name string) (id, letters string) {
	id, info, ok := strings.Cut(name, ":")
	if ok && strings.HasPrefix(info, "2,") {
		letters = info[2:]
	}
	return id, letters
}

// FlagsOf translates info letters to IMAP flags using kw for a–z. Letters
// without a meaning are dropped: they cannot be named.
func FlagsOf(letters string, kw *Keywords) []string {
	var flags []string
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		if f, ok := letterFlags[c]; ok {
			flags = append(flags, f)
		} else if c >= 'a' && c <= 'z' && kw[c-'a'] != "" {
			flags = append(flags, kw[c-'a'])
		}
	}
	return source.NormalizeFlags(flags)
}

// List implements source.Source. It reads new/ and cur/, ignores dot files
// and anything that is not a regular file, and reports messages oldest
// first.
func (s *Store) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	dir, err := s.Dir(folder)
	if err != nil {
		return err
	}
	if err := CheckNoLinks(s.root, dir); err != nil {
		return fmt.Errorf("folder %q: %w", folder, err)
	}
	if !isMaildir(dir) {
		return fmt.Errorf("folder %q: %w", folder, source.ErrFolderNotFound)
	}
	kw, err := ReadKeywords(dir)
	if err != nil {
		return fmt.Errorf("folder %q: %w", folder, err)
	}
	msgs, paths, err := scan(dir, folder, &kw)
	if err != nil {
		return fmt.Errorf("folder %q: %w", folder, err)
	}
	s.mu.Lock()
	s.paths[folder] = paths
	s.mu.Unlock()
	return source.Emit(ctx, msgs, fn)
}

func scan(dir, folder string, kw *Keywords) ([]source.Message, map[string]string, error) {
	var msgs []source.Message
	paths := map[string]string{}
	// cur/ first, so a message present in both (a crash in another tool's
	// new/ to cur/ move) is taken from cur/, where its flags are.
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) && sub == "new" {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
				continue
			}
			id, letters := SplitName(name)
			if _, dup := paths[id]; dup {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // moved or deleted by a mail client since ReadDir
			}
			if err != nil {
				return nil, nil, err
			}
			paths[id] = sub + "/" + name
			msgs = append(msgs, source.Message{
				Folder: folder,
				ID:     id,
				Flags:  FlagsOf(letters, kw),
				Date:   fi.ModTime(),
				Size:   fi.Size(),
			})
		}
	}
	slices.SortFunc(msgs, func(a, b source.Message) int {
		if c := a.Date.Compare(b.Date); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return msgs, paths, nil
}

// Path returns the current file of message id in folder, looking again on
// disk when the file was renamed since List (a mail client changed its
// flags). It returns an error wrapping source.ErrMessageNotFound when the
// message is gone.
func (s *Store) Path(folder, id string) (string, error) {
	dir, err := s.Dir(folder)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	rel, ok := s.paths[folder][id]
	s.mu.Unlock()
	if ok {
		p := filepath.Join(dir, rel)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
	}
	// Not known, or moved: learn where every file of the folder is now,
	// so a run of such lookups (flags set on messages of a folder that
	// was not listed) reads the directory once, not once each.
	found := map[string]string{}
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if mid, _ := SplitName(e.Name()); e.Type().IsRegular() && found[mid] == "" {
				found[mid] = sub + "/" + e.Name()
			}
		}
	}
	s.mu.Lock()
	s.paths[folder] = found
	s.mu.Unlock()
	if rel, ok := found[id]; ok {
		return filepath.Join(dir, rel), nil
	}
	return "", fmt.Errorf("folder %q message %q: %w", folder, id, source.ErrMessageNotFound)
}

// Remember records where message id of folder is, for Path: the file
// name in the folder's sub directory (cur or new). The folder's directory
// is not repeated in each: at 500,000 messages that was 40 MB.
func (s *Store) Remember(folder, id, sub, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paths[folder] == nil {
		s.paths[folder] = map[string]string{}
	}
	s.paths[folder][id] = sub + "/" + name
}

// Release forgets where folder's messages are (sink.Releaser): a copy
// into a Maildir of 500,000 messages no longer holds every file name to
// the end of the run. Path looks on disk for one it no longer knows.
func (s *Store) Release(folder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.paths, folder)
}

// Open implements source.Source.
func (s *Store) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	p, err := s.Path(m.Folder, m.ID)
	if err != nil {
		return nil, err
	}
	f, err := openNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		// Renamed between Path and Open: look once more.
		if p, err = s.Path(m.Folder, m.ID); err == nil {
			f, err = openNoFollow(p)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("folder %q message %q: %w", m.Folder, m.ID, source.ErrMessageNotFound)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Close implements source.Source.
func (s *Store) Close() error { return nil }

var _ source.Source = (*Store)(nil)

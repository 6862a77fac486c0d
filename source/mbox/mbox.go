// Package mbox reads mbox files: one file (a Google Takeout export, an old
// Unix spool) or a tree of them (Thunderbird's Local Folders, Apple Mail's
// export).
//
// Messages are split only at real From_ lines ("From ADDR Www Mmm d
// hh:mm"), or where a Content-Length header that checks out says. Each
// message is the bytes after its From_ line up to the next one, less the
// one blank line an mbox writer puts before every From_ line; mboxrd
// quoting (">From ", ">>From ") is undone when the file is known to use
// it. Nothing else is changed: Status, X-Mozilla-Status and X-Gmail-Labels
// headers are read for flags and folders and left in the message.
//
// The offsets of the messages are kept in the checkpoint (source.Cache)
// with a fingerprint of the file, so a re-run reads only what was appended
// since, not a 20 GB Takeout file from the start.
package mbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
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

	"github.com/mailferry/mailferry/source"
)

// Quoting conventions (?format=).
const (
	FormatAuto    = "auto"    // mboxrd if a ">>From " line shows it, else as mboxo
	FormatMboxrd  = "mboxrd"  // ">From " lines lose one '>'
	FormatMboxo   = "mboxo"   // quoting cannot be undone: lines stay as they are
	FormatMboxcl2 = "mboxcl2" // Content-Length delimits, nothing is quoted
)

// Options tune how files are read.
type Options struct {
	// Folder names the folder of a single file (default: the file's name
	// without ".mbox"; "Inbox" is INBOX).
	Folder string
	// Format is one of the Format constants ("" is FormatAuto).
	Format string
	// NoLabels ignores X-Gmail-Labels: every message stays in its file's
	// folder.
	NoLabels bool
	// KeepExpunged lists messages Thunderbird marked deleted but had not
	// yet compacted away (they are skipped by default).
	KeepExpunged bool
	Log          *slog.Logger
}

// ErrFormat: ?format= names no known convention.
var ErrFormat = errors.New("unknown mbox format (want auto, mboxrd, mboxo or mboxcl2)")

var errChanged = fmt.Errorf("%w (the mbox file was rewritten)", source.ErrMessageNotFound)

// Store is an mbox file or a tree of them. It implements source.Source and
// source.CacheUser.
type Store struct {
	root string
	opt  Options

	mu      sync.Mutex
	cache   source.Cache
	loaded  bool
	loadErr error
	files   []*mfile
	folders map[string]*folder
	read    int64 // bytes read while indexing
}

type mfile struct {
	path    string
	folder  string // the file's own folder
	f       *os.File
	idx     fileIndex
	unquote bool
	ids     []string
}

type folder struct {
	specialUse string
	msgs       []ref
	byID       map[string]ref
}

type ref struct {
	file  *mfile
	entry int
}

// Open opens the mbox file or directory tree at path.
func Open(path string, opt Options) (*Store, error) {
	switch opt.Format {
	case "":
		opt.Format = FormatAuto
	case FormatAuto, FormatMboxrd, FormatMboxo, FormatMboxcl2:
	default:
		return nil, fmt.Errorf("mbox %q: format %q: %w", path, opt.Format, ErrFormat)
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("mbox %q: %w", path, err)
	}
	return &Store{root: path, opt: opt}, nil
}

// UseCache implements source.CacheUser.
func (s *Store) UseCache(c source.Cache) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = c
}

// BytesRead is how many bytes of the files indexing read: the whole file
// the first time, the appended tail on a re-run.
func (s *Store) BytesRead() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read
}

// Folders implements source.Source. The first call indexes the files.
func (s *Store) Folders(ctx context.Context) ([]source.Folder, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	out := make([]source.Folder, 0, len(s.folders))
	for name, f := range s.folders {
		out = append(out, source.Folder{Name: name, SpecialUse: f.specialUse})
	}
	return out, nil
}

// List implements source.Source.
func (s *Store) List(ctx context.Context, folderName string, fn func(source.Message) error) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	f, ok := s.folders[folderName]
	if !ok {
		return fmt.Errorf("mbox %q: folder %q: %w", s.root, folderName, source.ErrFolderNotFound)
	}
	for _, r := range f.msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &r.file.idx.Entries[r.entry]
		if err := fn(source.Message{
			Folder: folderName, ID: r.file.ids[r.entry],
			MessageID: e.MessageID, MessageIDKnown: true,
			Flags: slices.Clone(e.Flags), Date: e.Date, Size: r.file.size(e),
		}); err != nil {
			return err
		}
	}
	return nil
}

func (m *mfile) size(e *entry) int64 {
	n := e.End - e.Body
	if m.unquoted(e) {
		n -= e.Quoted
	}
	return n
}

// unquoted reports whether e's mboxrd quoting is undone: in a file known
// to be mboxrd, and in every message mailferry wrote.
func (m *mfile) unquoted(e *entry) bool {
	return e.Mine || (m.unquote && !e.CL)
}

// Open implements source.Source.
func (s *Store) Open(ctx context.Context, msg source.Message) (io.ReadCloser, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	f, ok := s.folders[msg.Folder]
	if !ok {
		return nil, fmt.Errorf("mbox %q: folder %q: %w", s.root, msg.Folder, source.ErrFolderNotFound)
	}
	if r, ok := f.byID[msg.ID]; ok {
		e := &r.file.idx.Entries[r.entry]
		if fi, err := r.file.f.Stat(); err != nil || fi.Size() < e.End {
			return nil, fmt.Errorf("mbox %q: message %s: %w", r.file.path, msg.ID, errChanged)
		}
		var rd io.Reader = &checkedReader{r: io.NewSectionReader(r.file.f, e.Body, e.End-e.Body), h: sha256.New(), want: e.Sum, name: fmt.Sprintf("mbox %q: message at byte %d", r.file.path, e.Start)}
		if r.file.unquoted(e) && e.Quoted > 0 {
			rd = newUnquoter(rd)
		}
		return io.NopCloser(rd), nil
	}
	return nil, fmt.Errorf("mbox %q: folder %q: message %s: %w", s.root, msg.Folder, msg.ID, source.ErrMessageNotFound)
}

// Close implements source.Source.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.f.Close()
	}
	s.files = nil
	return nil
}

// load finds and indexes the files, once.
func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return s.loadErr
	}
	s.loaded = true
	s.loadErr = s.loadLocked(ctx)
	return s.loadErr
}

func (s *Store) loadLocked(ctx context.Context) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("mbox %q: %w", s.root, err)
	}
	var files []*mfile
	if fi.IsDir() {
		if files, err = findFiles(s.root, s.opt.Log); err != nil {
			return err
		}
	} else {
		name := s.opt.Folder
		if name == "" {
			name = folderName([]string{filepath.Base(s.root)})
		}
		files = []*mfile{{path: s.root, folder: name}}
	}
	s.folders = map[string]*folder{}
	for _, mf := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.index(mf, !fi.IsDir()); err != nil {
			return err
		}
		s.files = append(s.files, mf)
		s.place(mf)
	}
	return nil
}

// index opens mf and brings its index up to date: from the cache when the
// file still starts with the bytes the cache was made from, scanning only
// what follows; from the start otherwise.
func (s *Store) index(mf *mfile, single bool) error {
	f, err := os.Open(mf.path)
	if err != nil {
		return fmt.Errorf("mbox %q: %w", mf.path, err)
	}
	mf.f = f
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mbox %q: %w", mf.path, err)
	}
	size := fi.Size()
	key := "mbox:" + mf.path
	if abs, err := filepath.Abs(mf.path); err == nil {
		key = "mbox:" + abs
	}
	from := int64(0)
	if cached := s.cached(key); cached != nil && cached.Scanned <= size {
		head, tail, err := fingerprint(f, cached.Scanned, &s.read)
		switch {
		case err != nil || head != cached.Head || tail != cached.Tail:
			s.opt.Log.Info("mbox file changed since the last run; indexing it again", "file", mf.path)
		case cached.Scanned == size:
			s.opt.Log.Debug("mbox file unchanged since the last run", "file", mf.path, "messages", len(cached.Entries), "bytes_read", s.read)
			mf.idx = *cached
			mf.finishIndex(s.opt)
			return nil
		case len(cached.Entries) > 0:
			// Scan again from the last message on: what follows it may
			// have changed where it ends.
			mf.idx = *cached
			last := mf.idx.Entries[len(mf.idx.Entries)-1]
			mf.idx.Entries = mf.idx.Entries[:len(mf.idx.Entries)-1]
			from = last.Start
		}
	}
	if from == 0 {
		mf.idx = fileIndex{Version: indexVersion}
	}
	if err := scan(f, from, size, &mf.idx, &s.read); err != nil {
		if errors.Is(err, errNotMbox) && !single {
			return nil // findFiles checked the first line; it changed since
		}
		return fmt.Errorf("mbox %q: %w", mf.path, err)
	}
	mf.idx.Scanned = size
	s.opt.Log.Debug("indexed mbox file", "file", mf.path, "messages", len(mf.idx.Entries), "from_byte", from, "bytes_read", s.read)
	if mf.idx.Head, mf.idx.Tail, err = fingerprint(f, size, new(int64)); err != nil {
		return fmt.Errorf("mbox %q: %w", mf.path, err)
	}
	s.save(key, &mf.idx)
	mf.finishIndex(s.opt)
	return nil
}

func (s *Store) cached(key string) *fileIndex {
	if s.cache == nil {
		return nil
	}
	b, err := s.cache.Cached(key)
	if err != nil || b == nil {
		return nil
	}
	var idx fileIndex
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&idx); err != nil || idx.Version != indexVersion {
		return nil // a cache that does not decode costs a full scan, nothing else
	}
	return &idx
}

func (s *Store) save(key string, idx *fileIndex) {
	if s.cache == nil {
		return
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(idx); err != nil {
		s.opt.Log.Warn("cannot encode the mbox index; the next run reads the file again", "file", key, "error", err)
		return
	}
	if err := s.cache.SetCached(key, buf.Bytes()); err != nil {
		s.opt.Log.Warn("cannot save the mbox index; the next run reads the file again", "file", key, "error", err)
	}
}

// finishIndex decides the quoting and gives each message its ID: the
// hash of its bytes, so IDs survive a compaction that moves messages, and
// a count for byte-identical twins.
func (mf *mfile) finishIndex(opt Options) {
	mf.unquote = opt.Format == FormatMboxrd || (opt.Format == FormatAuto && mf.idx.DoubleQuoted)
	seen := map[[16]byte]int{}
	mf.ids = make([]string, len(mf.idx.Entries))
	for i, e := range mf.idx.Entries {
		mf.ids[i] = ID(e.Sum, seen[e.Sum])
		seen[e.Sum]++
	}
}

// place puts mf's messages into their folders: the file's own folder, or
// with Takeout's labels the folders of the labels.
func (s *Store) place(mf *mfile) {
	add := func(name, use string) *folder {
		f := s.folders[name]
		if f == nil {
			f = &folder{byID: map[string]ref{}}
			s.folders[name] = f
		}
		if f.specialUse == "" {
			f.specialUse = use
		}
		return f
	}
	own := add(mf.folder, "")
	for i, e := range mf.idx.Entries {
		if e.Expunged && !s.opt.KeepExpunged {
			continue
		}
		if !e.HasLabels || s.opt.NoLabels {
			own.msgs = append(own.msgs, ref{mf, i})
			own.byID[mf.ids[i]] = ref{mf, i}
			continue
		}
		names, uses := labelFolders(e.Labels)
		for _, n := range names {
			f := add(n, uses[n])
			f.msgs = append(f.msgs, ref{mf, i})
			f.byID[mf.ids[i]] = ref{mf, i}
		}
	}
	if len(own.msgs) == 0 && mf.labelled(s.opt) {
		delete(s.folders, mf.folder) // a Takeout file is not a folder itself
	}
}

func (mf *mfile) labelled(opt Options) bool {
	if opt.NoLabels {
		return false
	}
	for _, e := range mf.idx.Entries {
		if e.HasLabels {
			return true
		}
	}
	return false
}

// findFiles walks a tree of mbox files. Thunderbird keeps a folder's
// subfolders in "NAME.sbd/", and its ".msf" summaries beside the mbox
// files; Apple Mail exports "NAME.mbox/mbox". A file is taken as an mbox
// if its first line is a From_ line, or if it is empty and Thunderbird
// keeps a summary for it; anything else (filter rules, JSON) is skipped.
func findFiles(root string, log *slog.Logger) ([]*mfile, error) {
	var out []*mfile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("mbox %q: %w", path, err)
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".msf") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if parts[len(parts)-1] == "mbox" && len(parts) > 1 && strings.HasSuffix(parts[len(parts)-2], ".mbox") {
			parts = parts[:len(parts)-1]
		}
		ok, err := looksLikeMbox(path)
		if err != nil {
			return fmt.Errorf("mbox %q: %w", path, err)
		}
		if !ok {
			log.Debug("not an mbox file; skipped", "file", path)
			return nil
		}
		out = append(out, &mfile{path: path, folder: folderName(parts)})
		return nil
	})
	return out, err
}

func looksLikeMbox(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1024)
	n, err := io.ReadFull(f, buf)
	if n == 0 && (errors.Is(err, io.EOF)) {
		_, serr := os.Stat(path + ".msf")
		return serr == nil || filepath.Ext(path) == "" || filepath.Ext(path) == ".mbox", nil
	}
	return isFromLine(buf[:n]), nil
}

// folderName makes a folder name from path parts: ".sbd" and ".mbox"
// suffixes go, and a top-level "Inbox" is INBOX.
func folderName(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		for _, suffix := range []string{".sbd", ".mbox", ".mbx"} {
			if len(p) > len(suffix) && strings.EqualFold(p[len(p)-len(suffix):], suffix) {
				p = p[:len(p)-len(suffix)]
				break
			}
		}
		out[i] = p
	}
	if strings.EqualFold(out[0], "inbox") {
		out[0] = "INBOX"
	}
	return strings.Join(out, "/")
}

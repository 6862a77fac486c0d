// Package mbox writes mail into a tree of mbox files, one mboxrd file per
// folder: an archive any mail program opens.
//
// Each message is appended whole behind a From_ line (the envelope sender
// from Return-Path, else MAILER-DAEMON, and the received date) and a block
// of header lines that carry its flags (Status, X-Status, X-Keywords) and
// its stored length (source/mbox, mine.go). The message's own bytes
// follow, with LF line endings and mboxrd quoting, and nothing else
// changed; mailferry's mbox reader takes the block off again.
//
// An append is one write, synced before Put returns. One cut short by a
// crash is found by its declared length on the next run's first append to
// that file and cut off; the checkpoint never recorded it.
package mbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/internal/safename"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcmbox "github.com/mailferry/mailferry/source/mbox"
)

// Layout is how folders map to files.
type Layout int

const (
	// LayoutMbox: DIR/INBOX.mbox, and DIR/Archive/2024.mbox for the
	// folder Archive/2024.
	LayoutMbox Layout = iota
	// LayoutThunderbird: a Thunderbird profile's Local Folders, DIR/Inbox
	// and DIR/Archive.sbd/2024, no extension.
	LayoutThunderbird
)

// maxMessage bounds a message held in memory while it is appended.
const maxMessage = 1 << 30

// Sink is a tree of mbox files. It implements sink.Sink.
type Sink struct {
	root   string
	layout Layout
	log    *slog.Logger

	mu    sync.Mutex
	src   *srcmbox.Store // what the tree holds; nil once a Put changed it
	stale []*srcmbox.Store
	files map[string]*appender
}

// appender appends to one folder's file.
type appender struct {
	mu    sync.Mutex
	f     *os.File
	size  int64
	sep   []byte // what the file needs before the next From_ line
	twins map[[16]byte]int
}

// New opens (and makes, 0700) the tree at root.
func New(root string, layout Layout, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(root); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("mbox %q: a destination is a directory, one file per folder; this is a file", root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("mbox %q: %w", root, err)
	}
	return &Sink{root: root, layout: layout, log: log, files: map[string]*appender{}}, nil
}

var errBadName = errors.New("folder name cannot be an mbox file here")

// path is the file of folder, refusing names that would leave the tree or
// read back as another folder.
func (s *Sink) path(folder string) (string, error) {
	if p := safename.Problem(folder); p != "" {
		return "", fmt.Errorf("%w: %s", errBadName, p)
	}
	for _, p := range strings.Split(folder, "/") {
		low := strings.ToLower(p)
		switch {
		case strings.HasPrefix(p, "."):
			return "", fmt.Errorf("folder %q: %w (a part starting with '.', which mbox readers skip)", folder, errBadName)
		case strings.ContainsRune(p, '\\'):
			return "", fmt.Errorf("folder %q: %w (a backslash)", folder, errBadName)
		case strings.HasSuffix(low, ".mbox") || strings.HasSuffix(low, ".sbd") || strings.HasSuffix(low, ".mbx") || strings.HasSuffix(low, ".msf"):
			return "", fmt.Errorf("folder %q: %w (a part ending in .mbox, .sbd, .mbx or .msf would read back as another folder)", folder, errBadName)
		}
	}
	if s.layout == LayoutThunderbird {
		return srcmbox.TreePath(s.root, folder), nil
	}
	return filepath.Join(s.root, filepath.FromSlash(folder)+".mbox"), nil
}

// CreateFolder implements sink.Sink: an empty file.
func (s *Sink) CreateFolder(ctx context.Context, folder string) error {
	_, err := s.appender(folder)
	return err
}

// appender opens folder's file for appending, once per run: it makes the
// file and its directories if needed, and cuts off a message an earlier
// run was writing when it was stopped.
func (s *Sink) appender(folder string) (*appender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.files[folder]; a != nil {
		return a, nil
	}
	path, err := s.path(folder)
	if err != nil {
		return nil, err
	}
	if err := s.mkdirs(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("folder %q: %w", folder, err)
	}
	_, statErr := os.Lstat(path)
	f, err := openNoFollow(path)
	if err != nil {
		return nil, fmt.Errorf("folder %q: %w", folder, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	t, err := srcmbox.ReadTail(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("folder %q: %w", folder, err)
	}
	if t.Torn {
		s.log.Warn("cut off a message an earlier run was appending when it was stopped; it is copied again", "file", path, "at_byte", t.Cut)
		if err := f.Truncate(t.Cut); err != nil {
			f.Close()
			return nil, fmt.Errorf("folder %q: cut off a torn message: %w", folder, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		t.Size = t.Cut
	}
	a := &appender{f: f, size: t.Size, twins: t.Twins}
	// The blank line before each From_ line, which the previous message
	// may lack.
	if a.size > 0 {
		last := make([]byte, 2)
		n, _ := f.ReadAt(last[:min(2, a.size)], a.size-min(2, a.size))
		switch last = last[:n]; {
		case bytes.HasSuffix(last, []byte("\n\n")):
		case bytes.HasSuffix(last, []byte("\n")):
			a.sep = []byte("\n")
		default:
			a.sep = []byte("\n\n")
		}
	}
	s.files[folder] = a
	s.forget()
	return a, nil
}

// mkdirs makes dir and its parents under the root, 0700, never through a
// symbolic link.
func (s *Sink) mkdirs(dir string) error {
	rel, err := filepath.Rel(s.root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := s.root
	for _, p := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%q is not a directory (a symbolic link is not followed)", cur)
		}
	}
	return nil
}

// Put implements sink.Sink.
func (s *Sink) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxMessage+1))
	switch {
	case err != nil:
		return "", err
	case len(raw) > maxMessage:
		return "", fmt.Errorf("%w: over %d bytes", sink.ErrRejected, maxMessage)
	case m.Size >= 0 && int64(len(raw)) != m.Size:
		return "", fmt.Errorf("%w: %d bytes, %d declared", source.ErrSizeMismatch, len(raw), m.Size)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	stored := srcmbox.Quote(eol.Canonical(raw))
	sum := sha256.Sum256(stored)
	var key [16]byte
	copy(key[:], sum[:])
	a, err := s.appender(folder)
	if err != nil {
		return "", err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	var b bytes.Buffer
	b.Grow(len(stored) + 256)
	b.WriteString("From " + sender(raw) + " " + date.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n")
	b.Write(srcmbox.Block(m.Flags, int64(len(stored))))
	b.Write(stored)
	if len(stored) == 0 || stored[len(stored)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteByte('\n')

	a.mu.Lock()
	defer a.mu.Unlock()
	buf := append(a.sep, b.Bytes()...)
	if _, err := a.f.WriteAt(buf, a.size); err != nil {
		a.f.Truncate(a.size)
		return "", fmt.Errorf("folder %q: append: %w", folder, err)
	}
	if err := a.f.Sync(); err != nil {
		a.f.Truncate(a.size)
		return "", fmt.Errorf("folder %q: sync: %w", folder, err)
	}
	a.size += int64(len(buf))
	a.sep = nil
	id := srcmbox.ID(key, a.twins[key])
	a.twins[key]++
	s.mu.Lock()
	s.forget()
	s.mu.Unlock()
	return id, nil
}

// sender is the envelope sender for the From_ line: the Return-Path
// address, if it is one word, else MAILER-DAEMON.
func sender(msg []byte) string {
	from := ""
	header.Scan(bytes.NewReader(msg), func(name, v string) bool {
		if strings.EqualFold(name, "Return-Path") {
			from = strings.Trim(strings.TrimSpace(v), "<>")
			return false
		}
		return true
	})
	if from == "" || strings.ContainsFunc(from, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "MAILER-DAEMON"
	}
	return from
}

// forget drops the reader of the tree as it was; it is closed with the
// sink, as a message it opened may still be being read.
func (s *Sink) forget() {
	if s.src != nil {
		s.stale = append(s.stale, s.src)
		s.src = nil
	}
}

// reader is what the tree holds now, read afresh after a Put.
func (s *Sink) reader() (source.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src != nil {
		return s.src, nil
	}
	if _, err := os.Stat(s.root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	st, err := srcmbox.Open(s.root, srcmbox.Options{Log: s.log, NoLabels: true})
	if err != nil {
		return nil, err
	}
	s.src = st
	return st, nil
}

// Folders implements source.Source.
func (s *Sink) Folders(ctx context.Context) ([]source.Folder, error) {
	r, err := s.reader()
	if r == nil || err != nil {
		return nil, err
	}
	return r.Folders(ctx)
}

// List implements source.Source.
func (s *Sink) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	r, err := s.reader()
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("mbox %q: folder %q: %w", s.root, folder, source.ErrFolderNotFound)
	}
	return r.List(ctx, folder, fn)
}

// Open implements source.Source.
func (s *Sink) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, source.ErrMessageNotFound
	}
	return r.Open(ctx, m)
}

// Close implements source.Source.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, a := range s.files {
		errs = append(errs, a.f.Close())
	}
	s.files = map[string]*appender{}
	s.forget()
	for _, st := range s.stale {
		st.Close()
	}
	s.stale = nil
	return errors.Join(errs...)
}

var _ sink.Sink = (*Sink)(nil)

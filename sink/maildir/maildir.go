// Package maildir writes messages into a Maildir tree, crash-safely.
//
// Delivery follows the Maildir protocol with the fsyncs it leaves implicit
// (go-maildir v0.6.0 does none, publishes partial messages on error and
// creates files 0666, so delivery is written here): the message is written
// to tmp/, converted to LF line endings, fsynced, given the source's date as
// mtime (which Dovecot uses as INTERNALDATE), renamed into cur/ with its
// flags, and cur/ is fsynced. fsyncs of cur/ are shared by the deliveries
// waiting for one, so parallel workers do not pay one each.
package maildir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"sync/atomic"
	"time"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/internal/ctxio"
	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

// Sink is a Maildir tree messages are written to.
type Sink struct {
	*srcmaildir.Store
	log *slog.Logger

	mu      sync.Mutex
	created map[string]bool        // folders known to exist
	kwmu    map[string]*sync.Mutex // per folder: guards dovecot-keywords
	syncers map[string]*groupSync  // per cur/ directory
	warn    func(folder string, m source.Message, warning string)
}

// OnWarning implements sink.Warner.
func (s *Sink) OnWarning(fn func(folder string, m source.Message, warning string)) { s.warn = fn }

// New opens, creating it if needed, the Maildir tree at root.
func New(root string, layout srcmaildir.Layout, log *slog.Logger) (*Sink, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create maildir %q: %w", root, err)
	}
	st, err := srcmaildir.Open(root, layout)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st.Log = log
	return &Sink{Store: st, log: log, created: map[string]bool{}, kwmu: map[string]*sync.Mutex{}, syncers: map[string]*groupSync{}}, nil
}

// CreateFolder implements sink.Sink.
func (s *Sink) CreateFolder(ctx context.Context, folder string) error {
	// Serialised per folder: concurrent Puts into a new folder must not
	// create it, or clean its tmp/, while another is delivering there.
	mu := s.folderLock("create\x00" + folder)
	mu.Lock()
	defer mu.Unlock()
	s.mu.Lock()
	done := s.created[folder]
	s.mu.Unlock()
	if done {
		return nil
	}
	dir, err := s.Dir(folder)
	if err != nil {
		return err
	}
	if err := s.createDir(dir); err != nil {
		return fmt.Errorf("create folder %q: %w", folder, err)
	}
	if dir != s.Root() && s.Layout() == srcmaildir.LayoutMaildirPP {
		// Maildir++ marks subfolders with an empty maildirfolder file;
		// Dovecot and Courier expect it.
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("create folder %q: %w", folder, err)
		}
		f.Close()
	}
	s.mu.Lock()
	s.created[folder] = true
	s.mu.Unlock()
	return nil
}

// createDir makes dir (with parents) and its cur/new/tmp, 0700, and fsyncs
// every directory it created a name in, so the folder survives a crash.
func (s *Sink) createDir(dir string) error {
	if err := srcmaildir.CheckNoLinks(s.Root(), dir); err != nil {
		return err
	}
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if d == s.Root() || d == filepath.Dir(d) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := gomaildir.Dir(dir).Init(); err != nil { // cur, new, tmp: 0700
		return err
	}
	if err := cleanTmp(filepath.Join(dir, "tmp")); err != nil {
		return err
	}
	for _, d := range append(made, dir) {
		if err := atomicfile.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dir)
}

// cleanTmp removes files a killed run left in tmp/ once they are stale
// (36 hours, the Maildir rule). Staleness is judged by ctime, as Dovecot
// does, not by mtime as go-maildir's Dir.Clean does: a delivery sets the
// message's received date as mtime before its rename, so an mtime-based
// clean deletes in-flight messages.
func cleanTmp(tmp string) error {
	// (tmpMaxAge is a variable so tests can make every file stale: a
	// ctime cannot be set back.)
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-tmpMaxAge)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if ct, ok := changeTime(fi); ok && ct.Before(cutoff) {
			os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	return nil
}

var tmpMaxAge = 36 * time.Hour

// keyCounter and keyRandom make delivery names unique within this process;
// the time and pid make them unique across processes (the Maildir rule).
var keyCounter atomic.Uint64

// hostname is read once: it is part of every delivery name.
var hostname = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
})

func newKey() string {
	var r [8]byte
	rand.Read(r[:])
	host := hostname()
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), keyCounter.Add(1), hex.EncodeToString(r[:]), host)
}

// infoLetters translates the flags of m to the letters of a ":2," suffix,
// allocating dovecot-keywords letters for keywords as needed.
//
// $Forwarded is written twice: as "P" (passed), which mutt, notmuch and
// mbsync read, and as a keyword letter, which is all Dovecot reads (it
// gives "P" no meaning). The reader folds the two back into one flag.
func (s *Sink) infoLetters(folder, dir string, m source.Message) (string, error) {
	var letters []byte
	var keywords []string
	for _, f := range source.NormalizeFlags(m.Flags) {
		if l, ok := flagLetters[f]; ok {
			letters = append(letters, l)
		}
		if _, system := flagLetters[f]; (!system || f == source.FlagForwarded) && !strings.HasPrefix(f, `\`) {
			keywords = append(keywords, f)
		}
	}
	if len(keywords) > 0 {
		mu := s.folderLock(folder)
		mu.Lock()
		defer mu.Unlock()
		kw, err := srcmaildir.ReadKeywords(dir)
		if err != nil {
			return "", err
		}
		changed := false
		var dropped []string
		for _, k := range keywords {
			c, err := kw.Add(k)
			if err != nil {
				// The message itself is kept: losing the whole message over
				// its 27th keyword would be worse than losing the keyword.
				dropped = append(dropped, k)
				continue
			}
			changed = changed || c
			l, _ := kw.Letter(k)
			letters = append(letters, l)
		}
		if changed {
			if err := kw.Write(dir); err != nil {
				return "", fmt.Errorf("write %s: %w", srcmaildir.KeywordsFile, err)
			}
		}
		if len(dropped) > 0 {
			w := fmt.Sprintf("keywords not stored, the folder's 26 Maildir keyword letters are taken: %s", strings.Join(dropped, " "))
			s.log.Warn(w, "folder", folder)
			if s.warn != nil {
				s.warn(folder, m, w)
			}
		}
	}
	slices.Sort(letters) // the Maildir spec wants ASCII order
	return string(slices.Compact(letters)), nil
}

var (
	_ sink.Warner   = (*Sink)(nil)
	_ sink.Releaser = (*Sink)(nil)
)

var flagLetters = map[string]byte{
	source.FlagForwarded: byte(gomaildir.FlagPassed),
	source.FlagAnswered:  byte(gomaildir.FlagReplied),
	source.FlagSeen:      byte(gomaildir.FlagSeen),
	source.FlagDeleted:   byte(gomaildir.FlagTrashed),
	source.FlagDraft:     byte(gomaildir.FlagDraft),
	source.FlagFlagged:   byte(gomaildir.FlagFlagged),
}

func (s *Sink) folderLock(folder string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.kwmu[folder]
	if mu == nil {
		mu = new(sync.Mutex)
		s.kwmu[folder] = mu
	}
	return mu
}

// Put implements sink.Sink.
func (s *Sink) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	if err := s.CreateFolder(ctx, folder); err != nil {
		return "", err
	}
	dir, err := s.Dir(folder)
	if err != nil {
		return "", err
	}
	if err := srcmaildir.CheckNoLinks(s.Root(), dir); err != nil {
		return "", fmt.Errorf("folder %q: %w", folder, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tmp")); errors.Is(err, fs.ErrNotExist) {
		// Removed since it was made (a backup wiped while a run goes on,
		// or between runs of one process): make it again.
		s.mu.Lock()
		delete(s.created, folder)
		s.mu.Unlock()
		if err := s.CreateFolder(ctx, folder); err != nil {
			return "", err
		}
	}
	letters, err := s.infoLetters(folder, dir, m)
	if err != nil {
		return "", fmt.Errorf("folder %q: %w", folder, err)
	}
	key := newKey()
	tmp := filepath.Join(dir, "tmp", key)
	if err := deliverTmp(ctx, tmp, m, r); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if haveSyncFS {
		// The file is written and closed: one syncfs shared by the
		// deliveries waiting makes it durable before it is published.
		tmpDir := filepath.Join(dir, "tmp")
		if err := s.syncer(tmpDir, func() error { return syncFS(tmpDir) }).Sync(); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("sync message: %w", err)
		}
	}
	name := key + ":2," + letters
	final := filepath.Join(dir, "cur", name)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("publish message: %w", err)
	}
	if err := s.dirSyncer(filepath.Join(dir, "cur")).Sync(); err != nil {
		// The message is in place but not known to be durable. Leave it:
		// the next run finds it by listing, and removing it could lose
		// the only copy if the rename did reach the disk.
		return "", fmt.Errorf("sync %q: %w", filepath.Join(dir, "cur"), err)
	}
	// Where it went is not remembered: nothing of this run looks for
	// it, and 200,000 file names are 30 MB. Path finds it on disk.
	return key, nil
}

// copyBuf is the size of the buffer a delivery is written through: 64 KB
// writes, two system calls for most messages.
const copyBuf = 64 << 10

// deliverTmp writes the message to the new file tmp, with its date; the
// caller makes it durable (syncFS), or, where there is no syncfs, it
// fsyncs the file itself.
func deliverTmp(ctx context.Context, tmp string, m source.Message, r io.Reader) error {
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %q: %w", tmp, err)
	}
	defer f.Close()
	src := r
	if m.Size >= 0 {
		src = io.LimitReader(r, m.Size+1) // +1 to notice a body longer than declared
	}
	buf := bufpool.Get(copyBuf)[:copyBuf]
	defer bufpool.Put(buf)
	n, err := eol.CopyLF(f, ctxio.Reader(ctx, src), buf)
	if err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if m.Size >= 0 && n != m.Size {
		return fmt.Errorf("read %d bytes of a message declared as %d: %w", n, m.Size, source.ErrSizeMismatch)
	}
	if !haveSyncFS {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync message: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close message: %w", err)
	}
	if !m.Date.IsZero() {
		// Before the rename, so no published file ever has a wrong date.
		if err := os.Chtimes(tmp, m.Date, m.Date); err != nil {
			return fmt.Errorf("set date: %w", err)
		}
	}
	return nil
}

// SetFlags implements sink.FlagSetter by renaming the message's file.
func (s *Sink) SetFlags(ctx context.Context, folder, id string, flags []string) error {
	dir, err := s.Dir(folder)
	if err != nil {
		return err
	}
	letters, err := s.infoLetters(folder, dir, source.Message{Folder: folder, ID: id, Flags: flags})
	if err != nil {
		return fmt.Errorf("folder %q: %w", folder, err)
	}
	old, err := s.Path(folder, id)
	if err != nil {
		return err
	}
	name := id + ":2," + letters
	final := filepath.Join(dir, "cur", name)
	if old == final {
		return nil
	}
	if err := os.Rename(old, final); err != nil {
		return fmt.Errorf("set flags of %q: %w", id, err)
	}
	s.Remember(folder, id, "cur", name)
	if err := s.dirSyncer(filepath.Join(dir, "cur")).Sync(); err != nil {
		return err
	}
	if filepath.Dir(old) != filepath.Join(dir, "cur") {
		return atomicfile.SyncDir(filepath.Dir(old))
	}
	return nil
}

// syncer returns the group sync for key, which runs sync for everyone
// waiting at once.
func (s *Sink) syncer(key string, sync func() error) *groupSync {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.syncers[key]
	if g == nil {
		g = &groupSync{sync: sync}
		s.syncers[key] = g
	}
	return g
}

// dirSyncer fsyncs directory dir for everyone waiting.
func (s *Sink) dirSyncer(dir string) *groupSync {
	return s.syncer(dir, func() error { return atomicfile.SyncDir(dir) })
}

// groupSync runs one sync (a directory's fsync, a filesystem's syncfs) on
// behalf of every caller waiting. A caller
// that arrives while an fsync runs waits for the next one, since its rename
// may have come after the running fsync began.
type groupSync struct {
	sync    func() error
	mu      sync.Mutex
	running bool
	waiting []chan error
}

func (g *groupSync) Sync() error {
	ch := make(chan error, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, ch)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-ch
}

func (g *groupSync) loop() {
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := g.sync()
		for _, ch := range batch {
			ch <- err
		}
	}
}

var (
	_ sink.Sink       = (*Sink)(nil)
	_ sink.FlagSetter = (*Sink)(nil)
	_ sink.Deleter    = (*Sink)(nil)
)

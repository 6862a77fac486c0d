package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Format is the checkpoint format version written in the file.
const Format = "1"

var (
	// ErrLocked: another run holds the checkpoint (rule 5).
	ErrLocked = errors.New("checkpoint is in use by another mailferry run")
	// ErrOtherJob: the checkpoint file belongs to another job.
	ErrOtherJob = errors.New("checkpoint belongs to another job")
	// ErrCorrupt: the checkpoint file is damaged.
	ErrCorrupt = errors.New("checkpoint file is damaged")
)

// Commit cadence (rule 2).
var (
	CommitInterval = 500 * time.Millisecond
	CommitBatch    = 2000
)

var (
	bucketMeta   = []byte("meta")
	bucketSrc    = []byte("src")    // source folder -> source ID -> Record
	bucketDst    = []byte("dst")    // destination folder -> destination ID -> keys
	bucketFolder = []byte("folder") // source folder -> adapter folder state
	// bucketCache holds source.Cache entries. It is made on first use, so
	// checkpoints written before it existed stay valid.
	bucketCache = []byte("cache")
)

// Record says where one source message went.
type Record struct {
	DstFolder string
	// DstID is the destination's ID of the copy ("" when unknown, e.g. a
	// sink that cannot report it).
	DstID string
	// Key is the dedup key the message was matched on.
	Key string
	// Flags are the flags last carried to the destination copy.
	Flags []string
	// Copied is true when this message's own bytes were written to the
	// destination, false when it matched a message already there.
	Copied bool
}

// Entry is one change to record: a source message done, with the
// destination index entry that goes with it (rule 3).
type Entry struct {
	SrcFolder, SrcID string
	Record           Record
	// DstKeys, if not empty, are the dedup keys of Record.DstID.
	DstKeys []string
}

// Checkpoint is an open checkpoint file.
type Checkpoint struct {
	path string
	db   *bolt.DB // nil: an empty, read-only checkpoint (no file yet)

	// Set at Open from what the previous run left: whether it ended
	// without closing the checkpoint (killed, crashed), and when it last
	// committed.
	prevUnclean    bool
	prevLastCommit time.Time

	mu        sync.Mutex
	pending   []Entry
	intents   []intent                       // intents not yet committed (rule 9)
	dstOnly   map[string]map[string][]string // destination index entries without a source record
	err       error                          // first commit error; sticky
	kick      chan struct{}
	done      chan struct{}
	flushed   *sync.Cond
	added     uint64 // changes queued so far
	committed uint64 // changes durable so far
	closed    bool
}

// Open opens (creating it 0600 if needed) the checkpoint at path for job, a
// description of the job that contains no secret. It fails with ErrLocked if
// another run has it open, ErrOtherJob if it was made for another job, and
// ErrCorrupt if it is damaged.
func Open(path, job string) (*Checkpoint, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		if err := create(path, job); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("open checkpoint %s: %w", path, err)
	case fi.Size() == 0:
		// bbolt would take an empty file for a new database. A checkpoint
		// is never empty on disk (create makes it whole before it has its
		// name), so this one was truncated: a fresh start would believe
		// nothing was ever recorded, and the user must decide that.
		return nil, fmt.Errorf("%w: %s: the file is empty", ErrCorrupt, path)
	}
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	c := newCheckpoint(path, db)
	if err := c.initMeta(job); err != nil {
		db.Close()
		return nil, err
	}
	go c.committer()
	return c, nil
}

// create makes a new checkpoint under a temporary name and renames it to
// path once it is whole and synced, so that no crash leaves an empty or
// half-made file at path.
func create(path, job string) error {
	tmp := path + ".new"
	os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("create checkpoint %s: %w", path, err)
	}
	c := newCheckpoint(tmp, db)
	err = c.initMeta(job)
	if err == nil {
		// Made, not run: the first run is not taken for one that died,
		// nor for the second of a job (no heartbeat yet).
		err = db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if err := meta.Delete(keyHeartbeat); err != nil {
				return err
			}
			return meta.Put(keyClean, []byte("1"))
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create checkpoint %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// PreviousRun reports whether the run before this one ended without
// closing the checkpoint (it was killed or crashed), and when it last
// committed: writes it had started may still be landing at a server.
func (c *Checkpoint) PreviousRun() (unclean bool, lastCommit time.Time) {
	return c.prevUnclean, c.prevLastCommit
}

var (
	keyClean     = []byte("clean")
	keyHeartbeat = []byte("last_commit")
)

// OpenReadOnly opens the checkpoint at path for reading (for plan). A
// missing file is an empty checkpoint.
func OpenReadOnly(path, job string) (*Checkpoint, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return &Checkpoint{path: path, closed: true}, nil
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, err
	}
	c := newCheckpoint(path, db)
	c.closed = true // no committer
	if err := c.checkMeta(job); err != nil {
		db.Close()
		return nil, err
	}
	// A plan of a mirror needs to know there was an earlier run.
	c.guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketMeta).Get(keyHeartbeat); len(v) == 8 {
				c.prevLastCommit = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			}
			return nil
		})
	})
	return c, nil
}

func newCheckpoint(path string, db *bolt.DB) *Checkpoint {
	c := &Checkpoint{path: path, db: db, kick: make(chan struct{}, 1), done: make(chan struct{}), dstOnly: map[string]map[string][]string{}}
	c.flushed = sync.NewCond(&c.mu)
	return c
}

func openDB(path string, readOnly bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 300 * time.Millisecond, ReadOnly: readOnly})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	case err != nil && (errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) ||
		errors.Is(err, bolterrors.ErrVersionMismatch) || strings.Contains(err.Error(), "file size too small") ||
		strings.Contains(err.Error(), "invalid")):
		// bbolt reports some damage only as text (a truncated file).
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	case err != nil:
		return nil, fmt.Errorf("open checkpoint %s: %w", path, err)
	}
	return db, nil
}

func (c *Checkpoint) initMeta(job string) error {
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				if tx.Bucket(bucketSrc) != nil {
					return fmt.Errorf("%w: %s: no meta bucket", ErrCorrupt, c.path)
				}
				var err error
				if meta, err = tx.CreateBucket(bucketMeta); err != nil {
					return err
				}
				meta.Put([]byte("format"), []byte(Format))
				meta.Put([]byte("job"), []byte(job))
				meta.Put(keyClean, []byte("0"))
				meta.Put(keyHeartbeat, nowBytes())
				for _, b := range [][]byte{bucketSrc, bucketDst, bucketFolder} {
					if _, err := tx.CreateBucket(b); err != nil {
						return err
					}
				}
				return nil
			}
			if err := c.checkMetaTx(tx, job); err != nil {
				return err
			}
			// A run that did not close the checkpoint left clean=0.
			c.prevUnclean = string(meta.Get(keyClean)) == "0"
			if v := meta.Get(keyHeartbeat); len(v) == 8 {
				c.prevLastCommit = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			}
			meta.Put(keyClean, []byte("0"))
			return meta.Put(keyHeartbeat, nowBytes())
		})
	})
}

func nowBytes() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
}

func (c *Checkpoint) checkMeta(job string) error {
	return c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error { return c.checkMetaTx(tx, job) })
	})
}

func (c *Checkpoint) checkMetaTx(tx *bolt.Tx, job string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || tx.Bucket(bucketSrc) == nil || tx.Bucket(bucketDst) == nil || tx.Bucket(bucketFolder) == nil {
		return fmt.Errorf("%w: %s: buckets missing", ErrCorrupt, c.path)
	}
	if f := string(meta.Get([]byte("format"))); f != Format {
		return fmt.Errorf("%w: %s: format %q, this mailferry reads %q", ErrCorrupt, c.path, f, Format)
	}
	if got := string(meta.Get([]byte("job"))); got != job {
		return fmt.Errorf("%w: %s was made for %q, not %q", ErrOtherJob, c.path, got, job)
	}
	return nil
}

// guard turns a bbolt panic on a damaged page into ErrCorrupt: a damaged
// checkpoint must be reported, never crash the run or be taken as empty.
func (c *Checkpoint) guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, c.path, r)
		}
	}()
	return fn()
}

// Path returns the file name.
func (c *Checkpoint) Path() string { return c.path }

// Folder gives read access to the records of one source folder.
type Folder struct {
	tx *bolt.Tx
	b  *bolt.Bucket
	c  *Checkpoint
}

// ReadFolder opens the records of srcFolder for lookups. Close it when done.
// Lookups see the records committed when ReadFolder was called.
func (c *Checkpoint) ReadFolder(srcFolder string) (*Folder, error) {
	f := &Folder{c: c}
	if c.db == nil {
		return f, nil
	}
	err := c.guard(func() error {
		tx, err := c.db.Begin(false)
		if err != nil {
			return err
		}
		f.tx = tx
		if src := tx.Bucket(bucketSrc); src != nil {
			f.b = src.Bucket([]byte(srcFolder))
		}
		return nil
	})
	return f, err
}

// Get returns the record of source message id.
func (f *Folder) Get(id string) (rec Record, ok bool, err error) {
	if f.b == nil {
		return rec, false, nil
	}
	err = f.c.guard(func() error {
		v := f.b.Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		var derr error
		rec, derr = decodeRecord(v)
		if derr != nil {
			return fmt.Errorf("%w: %s: record of %q: %v", ErrCorrupt, f.c.path, id, derr)
		}
		return nil
	})
	return rec, ok, err
}

// Each calls fn with every record of the folder, in ID order.
func (f *Folder) Each(fn func(id string, rec Record) error) error {
	if f.b == nil {
		return nil
	}
	return f.c.guard(func() error {
		return f.b.ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%w: %s: record of %q: %v", ErrCorrupt, f.c.path, k, err)
			}
			return fn(string(k), rec)
		})
	})
}

// Forget removes the records of srcIDs in srcFolder, and the destination
// index entries of dstIDs (by destination folder): for messages deleted at
// the destination because they are gone from the source (mirror). Called
// after the deletions (rule 7): a crash in between leaves records that the
// next run deletes again, harmlessly.
func (c *Checkpoint) Forget(srcFolder string, srcIDs []string, dstIDs map[string][]string) error {
	if err := c.Flush(); err != nil {
		return err
	}
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketSrc).Bucket([]byte(srcFolder)); b != nil {
				for _, id := range srcIDs {
					if err := b.Delete([]byte(id)); err != nil {
						return err
					}
				}
			}
			for folder, ids := range dstIDs {
				if b := tx.Bucket(bucketDst).Bucket([]byte(folder)); b != nil {
					for _, id := range ids {
						if err := b.Delete([]byte(id)); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
	})
}

// Close ends the read transaction.
func (f *Folder) Close() error {
	if f.tx == nil {
		return nil
	}
	return f.tx.Rollback()
}

// DstKeys returns the known dedup keys of the messages of dstFolder, by
// destination ID.
func (c *Checkpoint) DstKeys(dstFolder string) (map[string][]string, error) {
	out := map[string][]string{}
	c.mu.Lock()
	for id, k := range c.dstOnly[dstFolder] {
		out[id] = k
	}
	for _, e := range c.pending {
		if e.Record.DstFolder == dstFolder && e.Record.DstID != "" && len(e.DstKeys) > 0 {
			out[e.Record.DstID] = e.DstKeys
		}
	}
	c.mu.Unlock()
	if c.db == nil {
		return out, nil
	}
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketDst).Bucket([]byte(dstFolder))
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if _, ok := out[string(k)]; !ok {
					out[string(k)] = strings.Split(string(v), "\n")
				}
				return nil
			})
		})
	})
	return out, err
}

// FolderState returns the adapter state saved for srcFolder (nil if none).
func (c *Checkpoint) FolderState(srcFolder string) ([]byte, error) {
	if c.db == nil {
		return nil, nil
	}
	var out []byte
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			out = bytes.Clone(tx.Bucket(bucketFolder).Get([]byte(srcFolder)))
			return nil
		})
	})
	return out, err
}

// SetFolderState saves adapter state for srcFolder, after flushing every
// record added before it, so the state never runs ahead of the records.
func (c *Checkpoint) SetFolderState(srcFolder string, state []byte) error {
	if err := c.Flush(); err != nil {
		return err
	}
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFolder).Put([]byte(srcFolder), state)
		})
	})
}

// Usage returns the bytes recorded for day (a byte budget's count).
func (c *Checkpoint) Usage(day string) (int64, error) {
	if c.db == nil {
		return 0, nil
	}
	var n int64
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketMeta).Get([]byte("usage/" + day)); len(v) == 8 {
				n = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	return n, err
}

// AddUsage adds n bytes to day's count, and forgets earlier days.
func (c *Checkpoint) AddUsage(day string, n int64) error {
	if c.db == nil || c.db.IsReadOnly() {
		return nil
	}
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			key := []byte("usage/" + day)
			var old int64
			if v := meta.Get(key); len(v) == 8 {
				old = int64(binary.BigEndian.Uint64(v))
			}
			var stale [][]byte
			meta.ForEach(func(k, _ []byte) error {
				if bytes.HasPrefix(k, []byte("usage/")) && !bytes.Equal(k, key) {
					stale = append(stale, bytes.Clone(k))
				}
				return nil
			})
			for _, k := range stale {
				meta.Delete(k)
			}
			return meta.Put(key, binary.BigEndian.AppendUint64(nil, uint64(old+n)))
		})
	})
}

// Cached returns the source.Cache entry under key (nil if none). Cache
// entries are hints an adapter checks before use (see source.Cache).
func (c *Checkpoint) Cached(key string) ([]byte, error) { return c.getIn(bucketCache, key) }

// SetCached saves a source.Cache entry. A read-only checkpoint (plan)
// keeps nothing. No ordering rule applies: an entry says nothing about
// what was copied.
func (c *Checkpoint) SetCached(key string, value []byte) error {
	return c.putIn(bucketCache, key, value)
}

// Add queues e for the next commit (rule 1: only after sink.Put returned
// nil). It returns the error of an earlier failed commit, if any.
func (c *Checkpoint) Add(e Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, e)
	c.added++
	if len(c.pending) >= CommitBatch {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// AddDstKeys records the dedup keys of a destination message that no
// source record names (one found by listing the destination), so the next
// run need not read it again.
func (c *Checkpoint) AddDstKeys(dstFolder, dstID string, keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dstOnly[dstFolder] == nil {
		c.dstOnly[dstFolder] = map[string][]string{}
	}
	c.dstOnly[dstFolder][dstID] = keys
	c.added++
}

// Flush commits everything added so far and waits until it is durable
// (rule 4).
func (c *Checkpoint) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil || c.closed {
		return c.err
	}
	target := c.added
	if c.committed < target {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	for c.committed < target && c.err == nil && !c.closed {
		c.flushed.Wait()
	}
	return c.err
}

func (c *Checkpoint) committer() {
	defer close(c.done)
	t := time.NewTicker(CommitInterval)
	defer t.Stop()
	for {
		stop := false
		select {
		case <-t.C:
		case _, ok := <-c.kick:
			stop = !ok
		}
		c.mu.Lock()
		batch, dst, intents, upto := c.pending, c.dstOnly, c.intents, c.added
		c.pending, c.dstOnly, c.intents = nil, map[string]map[string][]string{}, nil
		c.mu.Unlock()
		// Commit even with nothing to record: the commit time is the
		// heartbeat that tells the next run, if this one dies, how
		// recently it may have been writing (rule 5).
		err := c.commit(batch, dst, intents)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = fmt.Errorf("write checkpoint %s: %w", c.path, err)
		}
		if err == nil {
			c.committed = upto
		}
		c.flushed.Broadcast()
		c.mu.Unlock()
		if stop {
			return
		}
	}
}

func (c *Checkpoint) commit(batch []Entry, dst map[string]map[string][]string, intents []intent) error {
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketMeta).Put(keyHeartbeat, nowBytes()); err != nil {
				return err
			}
			srcRoot, dstRoot := tx.Bucket(bucketSrc), tx.Bucket(bucketDst)
			for folder, m := range dst {
				b, err := dstRoot.CreateBucketIfNotExists([]byte(folder))
				if err != nil {
					return err
				}
				for id, keys := range m {
					if err := b.Put([]byte(id), []byte(strings.Join(keys, "\n"))); err != nil {
						return err
					}
				}
			}
			for _, e := range batch {
				b, err := srcRoot.CreateBucketIfNotExists([]byte(e.SrcFolder))
				if err != nil {
					return err
				}
				if err := b.Put([]byte(e.SrcID), encodeRecord(e.Record)); err != nil {
					return err
				}
				if e.Record.DstID != "" && len(e.DstKeys) > 0 {
					d, err := dstRoot.CreateBucketIfNotExists([]byte(e.Record.DstFolder))
					if err != nil {
						return err
					}
					if err := d.Put([]byte(e.Record.DstID), []byte(strings.Join(e.DstKeys, "\n"))); err != nil {
						return err
					}
				}
			}
			return commitIntents(tx, intents, batch)
		})
	})
}

// Close flushes and closes the file (rule 4).
func (c *Checkpoint) Close() error {
	if c.db == nil {
		return nil
	}
	c.mu.Lock()
	wasClosed := c.closed
	c.mu.Unlock()
	var err error
	if !wasClosed {
		close(c.kick) // the committer commits what is pending, then stops
		<-c.done
		c.mu.Lock()
		c.closed = true
		err = c.err
		c.flushed.Broadcast()
		c.mu.Unlock()
		if err == nil {
			err = c.guard(func() error {
				return c.db.Update(func(tx *bolt.Tx) error {
					meta := tx.Bucket(bucketMeta)
					if err := meta.Put(keyHeartbeat, nowBytes()); err != nil {
						return err
					}
					return meta.Put(keyClean, []byte("1"))
				})
			})
		}
	}
	if cerr := c.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Records are encoded as uvarint-length-prefixed fields after a version
// byte: compact, and decoded without reflection on the re-run path.
// Version 1 had no Copied field; it is read as Copied false.
const recordVersion = 2

func encodeRecord(r Record) []byte {
	var b []byte
	b = append(b, recordVersion)
	copied := ""
	if r.Copied {
		copied = "1"
	}
	for _, s := range []string{r.DstFolder, r.DstID, r.Key, strings.Join(r.Flags, " "), copied} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeRecord(v []byte) (Record, error) {
	var r Record
	if len(v) == 0 || (v[0] != 1 && v[0] != recordVersion) {
		return r, errors.New("unknown record version")
	}
	fields := make([]string, 4+int(v[0]-1))
	v = v[1:]
	for i := range fields {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return r, errors.New("truncated record")
		}
		fields[i] = string(v[k : k+int(n)])
		v = v[k+int(n):]
	}
	r.DstFolder, r.DstID, r.Key = fields[0], fields[1], fields[2]
	if fields[3] != "" {
		r.Flags = strings.Split(fields[3], " ")
	}
	r.Copied = len(fields) > 4 && fields[4] == "1"
	return r, nil
}

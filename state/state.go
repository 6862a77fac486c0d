package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
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

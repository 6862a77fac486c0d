package state

import (
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

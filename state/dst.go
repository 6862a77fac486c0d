package state

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// Buckets made on first use, so checkpoints written before they existed
// stay valid.
var (
	// bucketDstState: destination folder -> the sink.FolderState (encoded
	// by the planner) recorded after the run's writes (rule 8).
	bucketDstState = []byte("dststate")
	// bucketIntent: source folder -> source ID -> destination folder, for
	// copies started without a dedup key to find them by (rule 9).
	bucketIntent = []byte("intent")
)

// DstState returns the state recorded for dstFolder (nil if none).
func (c *Checkpoint) DstState(dstFolder string) ([]byte, error) {
	return c.getIn(bucketDstState, dstFolder)
}

// SetDstState records dstFolder's state after flushing every record added
// before it (rule 8), so the state never vouches for records not yet
// written.
func (c *Checkpoint) SetDstState(dstFolder string, state []byte) error {
	if c.db == nil || c.db.IsReadOnly() {
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	return c.putIn(bucketDstState, dstFolder, state)
}

// putIn stores key in bucket, made if needed; a read-only checkpoint
// (plan) keeps nothing.
func (c *Checkpoint) putIn(bucket []byte, key string, value []byte) error {
	if c.db == nil || c.db.IsReadOnly() {
		return nil
	}
	return c.guard(func() error {
		return c.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put([]byte(key), value)
		})
	})
}

func (c *Checkpoint) getIn(bucket []byte, key string) ([]byte, error) {
	if c.db == nil {
		return nil, nil
	}
	var out []byte
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucket); b != nil {
				out = bytes.Clone(b.Get([]byte(key)))
			}
			return nil
		})
	})
	return out, err
}

// Intend records, durably, that the message srcID of srcFolder is about to
// be written to dstFolder, and returns once that is on disk (rule 9).
// Concurrent callers share one commit. The record that follows a
// successful write removes the intent in its own transaction.
func (c *Checkpoint) Intend(srcFolder, srcID, dstFolder string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.db == nil || c.closed {
		return c.err
	}
	c.intents = append(c.intents, intent{srcFolder, srcID, dstFolder})
	c.added++
	target := c.added
	select {
	case c.kick <- struct{}{}:
	default:
	}
	for c.committed < target && c.err == nil && !c.closed {
		c.flushed.Wait()
	}
	return c.err
}

type intent struct{ srcFolder, srcID, dstFolder string }

// Intents returns the outstanding intents of srcFolder: source ID ->
// destination folder.
func (c *Checkpoint) Intents(srcFolder string) (map[string]string, error) {
	out := map[string]string{}
	if c.db == nil {
		return out, nil
	}
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketIntent)
			if b == nil {
				return nil
			}
			if b = b.Bucket([]byte(srcFolder)); b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				out[string(k)] = string(v)
				return nil
			})
		})
	})
	return out, err
}

// RecordedDstIDs returns the destination IDs in dstFolder that any source
// record names, committed or pending: the copies accounted for. It reads
// every record, so it is for the rare run that must tell which messages
// of a folder are not accounted for (after a crash).
func (c *Checkpoint) RecordedDstIDs(dstFolder string) (map[string]bool, error) {
	out := map[string]bool{}
	c.mu.Lock()
	for _, e := range c.pending {
		if e.Record.DstFolder == dstFolder && e.Record.DstID != "" {
			out[e.Record.DstID] = true
		}
	}
	c.mu.Unlock()
	if c.db == nil {
		return out, nil
	}
	err := c.guard(func() error {
		return c.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSrc).ForEachBucket(func(name []byte) error {
				return tx.Bucket(bucketSrc).Bucket(name).ForEach(func(_, v []byte) error {
					rec, err := decodeRecord(v)
					if err == nil && rec.DstFolder == dstFolder && rec.DstID != "" {
						out[rec.DstID] = true
					}
					return nil
				})
			})
		})
	})
	return out, err
}

// commitIntents writes new intents and removes those that batch's records
// settle, within the commit's transaction.
func commitIntents(tx *bolt.Tx, add []intent, batch []Entry) error {
	if len(add) == 0 && tx.Bucket(bucketIntent) == nil {
		return nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketIntent)
	if err != nil {
		return err
	}
	for _, in := range add {
		b, err := root.CreateBucketIfNotExists([]byte(in.srcFolder))
		if err != nil {
			return err
		}
		if err := b.Put([]byte(in.srcID), []byte(in.dstFolder)); err != nil {
			return err
		}
	}
	for _, e := range batch {
		if b := root.Bucket([]byte(e.SrcFolder)); b != nil {
			if err := b.Delete([]byte(e.SrcID)); err != nil {
				return err
			}
		}
	}
	return nil
}

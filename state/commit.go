package state

import (
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

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

// fillPercent is how full bbolt leaves a page it splits. Its default, a
// half, suits keys that arrive in any order; a checkpoint's arrive mostly
// in order (UIDs, Maildir names that begin with their time), so half of
// every page would stay empty for good: at 500,000 messages the file was
// 214 MB, mapped whole into memory. 100,000 records committed 64 at a
// time: a 48 MB file at a half, 32 MB at 0.9.
const fillPercent = 0.9

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
				b.FillPercent = fillPercent
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
				b.FillPercent = fillPercent
				if err := b.Put([]byte(e.SrcID), encodeRecord(e.Record)); err != nil {
					return err
				}
				if e.Record.DstID != "" && len(e.DstKeys) > 0 {
					d, err := dstRoot.CreateBucketIfNotExists([]byte(e.Record.DstFolder))
					if err != nil {
						return err
					}
					d.FillPercent = fillPercent
					if err := d.Put([]byte(e.Record.DstID), []byte(strings.Join(e.DstKeys, "\n"))); err != nil {
						return err
					}
				}
			}
			return commitIntents(tx, intents, batch)
		})
	})
}

package state

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

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

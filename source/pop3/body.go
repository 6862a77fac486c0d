package pop3

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/source"
)

// A message up to describeWhole bytes is read whole into memory and kept
// for the Open that follows (read.go). Each used to get a fresh buffer
// that doubled as it filled, so a message cost about twice its size in
// allocations and the collector a large share of a POP3 copy's CPU. Now
// a buffer is sized from LIST and taken from a pool of its size class
// (internal/bufpool), and goes back when the sink has read it (Open's
// Close) or it is dropped unread (keep, pipeline).

// capBuffer holds one message, refusing to grow past max: a server cannot
// make a message LIST gave as small take much memory.
type capBuffer struct {
	b   []byte
	max int64
}

// newCapBuffer returns an empty buffer for a message LIST gave as size
// bytes, holding at most max.
func newCapBuffer(size, max int64) *capBuffer {
	// A server that counts LF line ends where it sends CRLF sends a
	// little more than it said.
	return &capBuffer{b: bufpool.Get(int(min(size+size/32+512, max))), max: max}
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if int64(len(b.b)+len(p)) > b.max {
		return 0, fmt.Errorf("%w: more than %d bytes, for a message LIST gave as much smaller", source.ErrSizeMismatch, b.max)
	}
	b.b = append(b.b, p...)
	return len(p), nil
}

// ReadFrom reads straight into the buffer (io.Copy's fast path), bounded
// as Write is.
func (b *capBuffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	empty := 0 // reads in a row that returned nothing
	for {
		if empty > 100 {
			return total, io.ErrNoProgress
		}
		room := int(min(int64(cap(b.b)), b.max)) // pooled buffers may be larger
		if len(b.b) == room {
			if int64(len(b.b)) >= b.max {
				// Full: one byte more is too much, none is the end.
				var one [1]byte
				n, err := r.Read(one[:])
				switch {
				case n > 0:
					return total, fmt.Errorf("%w: more than %d bytes, for a message LIST gave as much smaller", source.ErrSizeMismatch, b.max)
				case err == io.EOF:
					return total, nil
				case err != nil:
					return total, err
				}
				empty++
				continue
			}
			grown := append(bufpool.Get(int(min(int64(2*cap(b.b))+512, b.max))), b.b...)
			bufpool.Put(b.b)
			b.b = grown
			continue
		}
		n, err := r.Read(b.b[len(b.b):room])
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
		b.b = b.b[:len(b.b)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *capBuffer) Bytes() []byte { return b.b }
func (b *capBuffer) Len() int      { return len(b.b) }

// Reset empties the buffer (read: a TOP that fell short is read again
// with RETR).
func (b *capBuffer) Reset() { b.b = b.b[:0] }

// keptReader is Open's reader of a kept body: Close gives the buffer
// back.
type keptReader struct {
	bytes.Reader
	b    []byte
	once sync.Once
}

func newKeptReader(b []byte) *keptReader {
	k := &keptReader{b: b}
	k.Reader.Reset(b)
	return k
}

func (k *keptReader) Close() error {
	k.once.Do(func() { bufpool.Put(k.b) })
	return nil
}

// Package spool holds one message while it is between two stores: in
// memory up to a limit, then in an unlinked temporary file, so memory stays
// bounded whatever the message size and nothing is left behind, even after
// kill -9.
package spool

import (
	"bytes"
	"io"
	"os"
	"sync/atomic"
)

// MemLimit is how much one spool holds in memory before it moves to a
// file; TotalMemLimit is how much all spools together hold, so many
// messages in flight at once (the IMAP sink gathers dozens into one
// MULTIAPPEND) cannot add up to a lot of memory.
const (
	MemLimit      = 8 << 20
	TotalMemLimit = 32 << 20
)

// inMem is the bytes all open spools hold in memory.
var inMem atomic.Int64

// Spool is an io.Writer that can be read back, more than once.
type Spool struct {
	buf    bytes.Buffer
	file   *os.File
	size   int64
	hasNUL bool
}

func (s *Spool) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) >= 0 {
		s.hasNUL = true
	}
	s.size += int64(len(p))
	if s.file == nil && s.buf.Len()+len(p) <= MemLimit {
		if inMem.Add(int64(len(p))) <= TotalMemLimit {
			return s.buf.Write(p)
		}
		inMem.Add(-int64(len(p)))
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "mailferry-spool-*") // 0600
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name())
		s.file = f
		_, err = f.Write(s.buf.Bytes())
		inMem.Add(-int64(s.buf.Len()))
		s.buf = bytes.Buffer{}
		if err != nil {
			return 0, err
		}
	}
	return s.file.Write(p)
}

// Grow makes room in memory for n bytes more, when they would stay there:
// a message whose size is known is then held in one allocation, where a
// buffer doubling its way up zeroes and copies about twice its size.
func (s *Spool) Grow(n int64) {
	if s.file == nil && n > 0 && int64(s.buf.Len())+n <= MemLimit {
		s.buf.Grow(int(n))
	}
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// HasNUL reports whether a NUL byte was written.
func (s *Spool) HasNUL() bool { return s.hasNUL }

// Reader reads the spool from its start.
func (s *Spool) Reader() (io.Reader, error) {
	if s.file == nil {
		return bytes.NewReader(s.buf.Bytes()), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.file, nil
}

// Close releases the memory or the file.
func (s *Spool) Close() error {
	inMem.Add(-int64(s.buf.Len()))
	s.buf = bytes.Buffer{}
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}

// Reset empties the spool for writing anew (a retrieval started over).
func (s *Spool) Reset() {
	s.Close()
	*s = Spool{}
}

package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// dotReader streams the body of a POP3 multi-line response byte-exactly:
// CRLF kept, a leading "." removed from every line that has one (RFC 1939
// §3 byte-stuffing), lines of any length, and the terminating ".\r\n" taken
// only at the start of a line. go-pop3 v1.0.0 gets all three wrong (library
// audit #1–#3) and net/textproto's DotReader folds CRLF to LF, so this is
// the reader for RETR and TOP.
type dotReader struct {
	br          *bufio.Reader
	atLineStart bool
	pending     []byte // what of the last line p had no room for, in spill
	spill       []byte
	done        bool
	err         error
}

func newDotReader(br *bufio.Reader) *dotReader { return &dotReader{br: br, atLineStart: true} }

func (d *dotReader) Read(p []byte) (int, error) {
	n, err := d.read(p)
	// Fill p with further lines already buffered: one line per Read would
	// make a large message cost a call per line.
	for err == nil && n < len(p) && len(d.pending) == 0 && !d.done && d.br.Buffered() > 0 {
		var k int
		k, err = d.read(p[n:])
		n += k
	}
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil // EOF comes with the next call
	}
	return n, err
}

func (d *dotReader) read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		frag, err := d.br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !full {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the connection ended before "."
			}
			d.err = err
			return 0, err
		}
		if d.atLineStart && len(frag) > 0 && frag[0] == '.' {
			if bytes.Equal(frag, []byte(".\r\n")) || bytes.Equal(frag, []byte(".\n")) {
				d.done = true
				return 0, io.EOF
			}
			frag = frag[1:]
		}
		// A fragment that filled the buffer did not end a line, so what
		// follows it is not at a line start (audit #3).
		d.atLineStart = !full
		// Straight into p: a copy of every line first was a fifth of a
		// POP3 copy's allocations. frag is the reader's own buffer, so
		// what does not fit is kept aside before the next read.
		n := copy(p, frag)
		if n < len(frag) {
			d.spill = append(d.spill[:0], frag[n:]...)
			d.pending = d.spill
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// trailerReader undoes the one change RFC 1939 forces on a message: a
// multi-line response ends with CRLF before its ".", so a message without a
// final line break gains one on the wire (a 0-byte message becomes CRLF).
// When the body is exactly listSize+2 bytes and ends in CRLF, the server
// added them, since LIST gives the message's own size; otherwise nothing is
// dropped. listSize < 0 (unknown) turns it off.
type trailerReader struct {
	r        io.Reader
	listSize int64
	n        int64
	hold     [2]byte // the last bytes read, not yet given out
	nh       int
	ready    []byte // read for a p too small to hold back two bytes in
	small    []byte
	eof      bool
}

func (t *trailerReader) Read(p []byte) (int, error) {
	if t.listSize < 0 {
		return t.r.Read(p)
	}
	if len(t.ready) > 0 {
		k := copy(p, t.ready)
		t.ready = t.ready[k:]
		return k, nil
	}
	if len(p) <= len(t.hold) {
		if t.small == nil {
			t.small = make([]byte, 512)
		}
		k, err := t.Read(t.small)
		t.ready = t.small[:k]
		n := copy(p, t.ready)
		t.ready = t.ready[n:]
		if n > 0 {
			err = nil
		}
		return n, err
	}
	// The bytes held back go first, then a read after them into p itself,
	// of which the last two are held back in turn.
	for {
		if t.eof {
			return 0, io.EOF
		}
		h := copy(p, t.hold[:t.nh])
		k, err := t.r.Read(p[h:])
		t.n += int64(k)
		tot := h + k
		if errors.Is(err, io.EOF) {
			t.eof, t.nh = true, 0
			if t.n == t.listSize+2 && bytes.HasSuffix(p[:tot], []byte("\r\n")) {
				tot -= 2
			}
			if tot == 0 {
				return 0, io.EOF
			}
			return tot, nil
		}
		if err != nil {
			return 0, err
		}
		t.nh = copy(t.hold[:], p[max(0, tot-len(t.hold)):tot])
		if tot > len(t.hold) {
			return tot - len(t.hold), nil
		}
	}
}

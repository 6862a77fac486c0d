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
	pending     []byte
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
		d.pending = append(d.pending[:0], frag...)
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
	hold     []byte // the last bytes read, not yet given out
	buf      []byte
	eof      bool
}

func (t *trailerReader) Read(p []byte) (int, error) {
	if t.listSize < 0 {
		return t.r.Read(p)
	}
	for {
		if t.eof {
			if len(t.hold) == 0 {
				return 0, io.EOF
			}
			k := copy(p, t.hold)
			t.hold = t.hold[k:]
			return k, nil
		}
		if t.buf == nil {
			t.buf = make([]byte, 32<<10)
		}
		k, err := t.r.Read(t.buf)
		t.n += int64(k)
		t.hold = append(t.hold, t.buf[:k]...)
		if errors.Is(err, io.EOF) {
			t.eof = true
			if t.n == t.listSize+2 && bytes.HasSuffix(t.hold, []byte("\r\n")) {
				t.hold = t.hold[:len(t.hold)-2]
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if len(t.hold) > 2 { // give out all but the last two bytes
			k := copy(p, t.hold[:len(t.hold)-2])
			t.hold = append(t.hold[:0], t.hold[k:]...)
			return k, nil
		}
	}
}

// Package eol converts line endings while streaming.
//
// mailferry keeps the bytes of a message unchanged except for line endings:
// Maildir files are stored with LF (the Maildir convention, and what Dovecot
// writes), IMAP and POP3 carry CRLF. Only the pair CR LF and a lone LF are
// line endings; a CR on its own is content and is never touched.
package eol

import (
	"bytes"
	"io"
)

// LFWriter writes to W what it is given with every CRLF replaced by LF. A CR
// at the end of one Write is held back until the next byte is known, so
// Close must be called to flush it.
type LFWriter struct {
	W         io.Writer
	pendingCR bool
	buf       []byte
}

func (w *LFWriter) Write(p []byte) (int, error) {
	out := w.buf[:0]
	if cap(out) < len(p)+1 {
		out = make([]byte, 0, len(p)+1)
	}
	if w.pendingCR && len(p) > 0 {
		w.pendingCR = false
		if p[0] != '\n' {
			out = append(out, '\r')
		}
	}
	out, w.pendingCR = appendLF(out, p, w.pendingCR)
	w.buf = out
	if _, err := w.W.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendLF appends p to out with each CRLF made LF; a CR that ends p is
// left out and reported (pending), unless p is empty and one already was.
// The runs between CRs are copied whole: a byte-at-a-time loop was a
// tenth of a POP3 copy's CPU.
func appendLF(out, p []byte, pending bool) ([]byte, bool) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			return append(out, p...), false
		}
		out = append(out, p[:i]...)
		if i+1 == len(p) {
			return out, true
		}
		if p[i+1] != '\n' {
			out = append(out, '\r')
		}
		p = p[i+1:]
	}
	return out, pending
}

// CopyLF copies src to dst as LFWriter would, through buf (at least 2
// bytes; its whole length is used), converting in place: a delivery then
// needs no buffer but the one its caller lends. It returns the bytes read.
func CopyLF(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	pendingCR := false
	for {
		// buf[0] is kept for a CR held back from the read before.
		k, rerr := src.Read(buf[1:])
		n += int64(k)
		if k > 0 {
			out := buf[1:1]
			if pendingCR && buf[1] != '\n' {
				buf[0] = '\r'
				out = buf[0:1]
			}
			// In place: the output never outruns the input it comes from.
			out, pendingCR = appendLF(out, buf[1:1+k], false)
			if len(out) > 0 {
				if _, err := dst.Write(out); err != nil {
					return n, err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, rerr
		}
	}
	if pendingCR {
		if _, err := dst.Write([]byte{'\r'}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close writes a held-back CR. It does not close W.
func (w *LFWriter) Close() error {
	if w.pendingCR {
		w.pendingCR = false
		_, err := w.W.Write([]byte{'\r'})
		return err
	}
	return nil
}

// CRLFWriter writes to W what it is given with every LF that is not already
// preceded by CR replaced by CRLF.
type CRLFWriter struct {
	W      io.Writer
	lastCR bool
	buf    []byte
}

func (w *CRLFWriter) Write(p []byte) (int, error) {
	var out []byte
	out, w.lastCR = appendCRLF(w.buf[:0], p, w.lastCR)
	w.buf = out
	if _, err := w.W.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendCRLF appends p to out with each LF not preceded by CR made CRLF;
// lastCR says whether the byte before p was a CR, and it returns whether
// p's last byte is. The runs between LFs are copied whole.
func appendCRLF(out, p []byte, lastCR bool) ([]byte, bool) {
	if len(p) == 0 {
		return out, lastCR
	}
	end := p[len(p)-1] == '\r'
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return append(out, p...), end
		}
		bare := !lastCR
		if i > 0 {
			bare = p[i-1] != '\r'
		}
		out = append(out, p[:i]...)
		if bare {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		lastCR = false
		p = p[i+1:]
	}
	return out, end
}

// CopyCRLF copies src to dst as CRLFWriter would, through buf (at least 3
// bytes): a third of it is read into, the rest takes the converted bytes,
// which at most double. It returns the bytes read.
func CopyCRLF(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	in, out := buf[:len(buf)/3], buf[len(buf)/3:]
	var n int64
	lastCR := false
	for {
		k, rerr := src.Read(in)
		n += int64(k)
		if k > 0 {
			var conv []byte
			conv, lastCR = appendCRLF(out[:0], in[:k], lastCR)
			if _, err := dst.Write(conv); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// CRLFSize returns the length p would have after CRLFWriter, for content
// whose length is n and which holds bareLF line feeds not preceded by CR.
// Counter counts those.
type Counter struct {
	N      int64 // bytes seen
	BareLF int64 // LFs not preceded by CR
	lastCR bool
}

func (c *Counter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' && !c.lastCR {
			c.BareLF++
		}
		c.lastCR = b == '\r'
	}
	c.N += int64(len(p))
	return len(p), nil
}

// CRLFLen is the length of what was counted once converted by CRLFWriter.
func (c *Counter) CRLFLen() int64 { return c.N + c.BareLF }

// Canonical returns p with every CRLF replaced by LF: the form in which
// messages are compared and hashed ("byte for byte, line endings aside").
func Canonical(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for i, c := range p {
		if c == '\r' && i+1 < len(p) && p[i+1] == '\n' {
			continue
		}
		out = append(out, c)
	}
	return out
}

package eol

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriters(t *testing.T) {
	tests := []struct{ in, lf, crlf string }{
		{"a\r\nb\nc", "a\nb\nc", "a\r\nb\r\nc"},
		{"lone\rcr\r", "lone\rcr\r", "lone\rcr\r"},
		{"\r\n\r\n", "\n\n", "\r\n\r\n"},
		{"", "", ""},
		{"x\n", "x\n", "x\r\n"},
		{"\r\r\n", "\r\n", "\r\r\n"},
	}
	for _, tt := range tests {
		// Feed one byte at a time, so a CR at the end of a Write is exercised.
		var lf, crlf bytes.Buffer
		lw := &LFWriter{W: &lf}
		cw := &CRLFWriter{W: &crlf}
		var cnt Counter
		for i := 0; i < len(tt.in); i++ {
			lw.Write([]byte{tt.in[i]})
			cw.Write([]byte{tt.in[i]})
			cnt.Write([]byte{tt.in[i]})
		}
		lw.Close()
		if lf.String() != tt.lf {
			t.Errorf("LF(%q) = %q, want %q", tt.in, lf.String(), tt.lf)
		}
		if crlf.String() != tt.crlf {
			t.Errorf("CRLF(%q) = %q, want %q", tt.in, crlf.String(), tt.crlf)
		}
		if cnt.CRLFLen() != int64(len(tt.crlf)) {
			t.Errorf("CRLFLen(%q) = %d, want %d", tt.in, cnt.CRLFLen(), len(tt.crlf))
		}
		if got := string(Canonical([]byte(tt.in))); got != tt.lf {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.lf)
		}
	}
}

// CopyLF and CopyCRLF give what LFWriter and CRLFWriter give, whatever
// the reads' sizes and the buffer's: a CR held at the end of one read, a
// CR as the last byte, a CRLF split across reads.
func TestCopy(t *testing.T) {
	inputs := []string{"a\r\nb\nc", "\n\n\r\n\r\r\n\n", "x\ny\r\nz\n", "lone\rcr\r", "\r\n\r\n", "", "x\n", "\r\r\n", "\r", "ab\r\r\r\ncd\r\n\r\rx",
		strings.Repeat("line\r\n", 1000) + "\r"}
	for _, in := range inputs {
		var want, wantCRLF bytes.Buffer
		lw := &LFWriter{W: &want}
		lw.Write([]byte(in))
		lw.Close()
		(&CRLFWriter{W: &wantCRLF}).Write([]byte(in))
		for _, size := range []int{3, 4, 7, 64, 32 << 10} {
			for _, one := range []bool{false, true} {
				var r io.Reader = strings.NewReader(in)
				if one {
					r = iotest.OneByteReader(r)
				}
				var got bytes.Buffer
				n, err := CopyLF(&got, r, make([]byte, size))
				if err != nil || n != int64(len(in)) || got.String() != want.String() {
					t.Errorf("CopyLF(%.20q, buf %d, one byte %v) = %d, %v, %.20q; want %d, %.20q", in, size, one, n, err, got.String(), len(in), want.String())
				}
				r = strings.NewReader(in)
				if one {
					r = iotest.OneByteReader(r)
				}
				got.Reset()
				n, err = CopyCRLF(&got, r, make([]byte, size))
				if err != nil || n != int64(len(in)) || got.String() != wantCRLF.String() {
					t.Errorf("CopyCRLF(%.20q, buf %d, one byte %v) = %d, %v, %.20q; want %d, %.20q", in, size, one, n, err, got.String(), len(in), wantCRLF.String())
				}
			}
		}
	}
}

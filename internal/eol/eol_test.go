package eol

import (
	"bytes"
	"testing"
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

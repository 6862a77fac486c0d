package spool

import (
	"bytes"
	"io"
	"testing"
)

func TestSpool(t *testing.T) {
	for _, size := range []int{0, 10, MemLimit, MemLimit + 1, 3*MemLimit + 7} {
		var s Spool
		want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for p := want; len(p) > 0; {
			n := min(len(p), 100003)
			s.Write(p[:n])
			p = p[n:]
		}
		for range 2 { // readable twice
			r, err := s.Reader()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			if !bytes.Equal(got, want) || s.Size() != int64(size) {
				t.Fatalf("size %d: read back %d bytes", size, len(got))
			}
		}
		if (s.file != nil) != (size > MemLimit) {
			t.Errorf("size %d: in a file = %v", size, s.file != nil)
		}
		s.Close()
	}
	var s Spool
	s.Write([]byte("a\x00b"))
	if !s.HasNUL() {
		t.Fatal("NUL not noticed")
	}
}

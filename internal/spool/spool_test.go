package spool

import (
	"bytes"
	"io"
	"testing"
)

// What is written reads back, twice, from memory up to MemLimit and from
// a file beyond, whether or not room was made for it first (Grow, with a
// size guessed right or too small).
func TestSpool(t *testing.T) {
	for _, tt := range []struct{ size, grow int }{{0, 0}, {10, 0}, {MemLimit, 0}, {MemLimit + 1, 0}, {3*MemLimit + 7, 0},
		{10, 10}, {100000, 50000}, {MemLimit, MemLimit}, {MemLimit + 1, MemLimit + 1}} {
		size := tt.size
		var s Spool
		s.Grow(int64(tt.grow))
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
	s.Close()
}

// Spools together hold at most TotalMemLimit in memory: the ones past it
// go to files, and closing gives the memory back.
func TestTotalMemLimit(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 4<<20)
	var spools []*Spool
	for range TotalMemLimit/len(chunk) + 2 {
		s := &Spool{}
		s.Write(chunk)
		spools = append(spools, s)
	}
	inFiles := 0
	for _, s := range spools {
		if s.file != nil {
			inFiles++
		}
		if r, _ := s.Reader(); r == nil {
			t.Fatal("no reader")
		}
	}
	if inFiles != 2 || inMem.Load() != TotalMemLimit {
		t.Fatalf("%d spools in files, %d bytes in memory; want 2 and %d", inFiles, inMem.Load(), TotalMemLimit)
	}
	for _, s := range spools {
		s.Close()
	}
	if inMem.Load() != 0 {
		t.Fatalf("%d bytes still counted after Close", inMem.Load())
	}
	s := &Spool{}
	s.Write(chunk)
	if s.file != nil {
		t.Fatal("memory not given back: a small spool went to a file")
	}
	s.Close()
}

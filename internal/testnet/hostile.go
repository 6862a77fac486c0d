package testnet

import (
	"bytes"
	"io"
	"runtime"
)

// Flood writes filler to w until limit bytes went out or w fails: a server
// that never ends a line, a literal or a response.
func Flood(w io.Writer, limit int) {
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	for sent := 0; sent < limit; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// Allocated runs fn and returns the bytes allocated meanwhile, the bound
// on memory a hostile server made the caller spend.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

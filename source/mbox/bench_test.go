package mbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
)

// BenchmarkIndex indexes a 2,000-message (about 4 MB) mbox file from
// scratch: the first run over a Takeout file, per byte.
//
//	go test -run - -bench . ./source/mbox
func BenchmarkIndex(b *testing.B) {
	p := filepath.Join(b.TempDir(), "f.mbox")
	var buf bytes.Buffer
	for i := range 2000 {
		Append(&buf, "x@xxx", time.Unix(int64(i)*3600, 0), takeoutMsg(i, "Inbox,Opened"))
	}
	os.WriteFile(p, buf.Bytes(), 0o600)
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for range b.N {
		s, err := Open(p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := s.List(context.Background(), "INBOX", func(source.Message) error { n++; return nil }); err != nil || n != 2000 {
			b.Fatalf("%d messages, %v", n, err)
		}
		s.Close()
	}
}

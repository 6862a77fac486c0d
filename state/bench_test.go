package state

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAddFlush records messages as a run does (Add per message, the
// batched commit of rule 2) and flushes once per 1,000:
//
//	go test -run - -bench . ./state
func BenchmarkAddFlush(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "job.ckpt"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("1/%d", i)
		if err := c.Add(Entry{SrcFolder: "INBOX", SrcID: id, Record: Record{DstFolder: "INBOX", DstID: id, Key: "m:" + id + "@example.com", Flags: []string{`\Seen`}, Copied: true}, DstKeys: []string{"m:" + id + "@example.com"}}); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := c.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLookup is the re-run's hot path: one record lookup per source
// message.
func BenchmarkLookup(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "job.ckpt"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 50000
	for i := range n {
		id := fmt.Sprintf("1/%d", i)
		c.Add(Entry{SrcFolder: "INBOX", SrcID: id, Record: Record{DstFolder: "INBOX", DstID: id, Key: "m:" + id, Copied: true}})
	}
	c.Flush()
	f, err := c.ReadFolder("INBOX")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := f.Get(fmt.Sprintf("1/%d", i%n)); !ok || err != nil {
			b.Fatal("missing record")
		}
	}
}

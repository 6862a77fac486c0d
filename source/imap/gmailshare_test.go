package imap

import (
	"bytes"
	"testing"
)

// A kept body serves the other copies of its message, and only them; it
// is let go after the last, and the oldest bodies make room for new ones.
func TestBodyShare(t *testing.T) {
	var b bodyShare
	b.expect("INBOX", "1/1", 7, 3)
	b.expect("Work", "2/5", 7, 3)
	b.expect("Later", "3/9", 7, 3)
	b.expect("Work", "2/6", 8, 2)
	if body, id, shared := b.take("INBOX", "1/1"); body != nil || id != 7 || !shared {
		t.Fatalf("first copy: %q, %d, %v; want to read it, shared", body, id, shared)
	}
	b.keep(7, []byte("seven"))
	if !b.has("Work", "2/5") || b.has("Work", "2/6") {
		t.Error("has: wrong")
	}
	for _, c := range []struct{ folder, id string }{{"Work", "2/5"}, {"Later", "3/9"}} {
		if body, _, _ := b.take(c.folder, c.id); !bytes.Equal(body, []byte("seven")) {
			t.Errorf("%s %s: %q, want the kept body", c.folder, c.id, body)
		}
	}
	if b.used != 0 || len(b.bodies) != 0 {
		t.Errorf("after the last copy, %d bytes still held", b.used)
	}
	if _, _, shared := b.take("Other", "9/9"); shared {
		t.Error("a message no other folder lists counted as shared")
	}
	// Room: a body that does not fit pushes out the oldest.
	big := bytes.Repeat([]byte("x"), shareMaxMsg)
	for i := uint64(100); i < 100+shareBytes/shareMaxMsg+2; i++ {
		b.expect("A", "x", i, 2) // of: one key, overwritten; left: per message
		b.keep(i, big)
	}
	if b.used > shareBytes {
		t.Errorf("%d bytes held, over the %d allowed", b.used, shareBytes)
	}
	if _, ok := b.bodies[100]; ok {
		t.Error("the oldest body was not let go for room")
	}
	b.keep(500, append(big, 'x'))
	if _, ok := b.bodies[500]; ok {
		t.Error("a body over shareMaxMsg was kept")
	}
}

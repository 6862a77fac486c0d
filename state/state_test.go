package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTripAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "job.ckpt")
	c, err := Open(path, "job A")
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{DstFolder: "INBOX/Sub", DstID: "d1", Key: "m:a@b", Flags: []string{`\Seen`, "$Label1"}}
	if err := c.Add(Entry{SrcFolder: "INBOX", SrcID: "s1", Record: rec, DstKeys: []string{"m:a@b"}}); err != nil {
		t.Fatal(err)
	}
	c.AddDstKeys("INBOX/Sub", "d0", []string{"m:old@x", "c:abc"})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("checkpoint dir mode %v, want 0700", di.Mode().Perm())
	}

	c, err = Open(path, "job A")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.ReadFolder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Get("s1")
	f.Close()
	if err != nil || !ok || got.DstID != "d1" || got.Key != "m:a@b" || len(got.Flags) != 2 || got.DstFolder != "INBOX/Sub" {
		t.Fatalf("Get = %+v, %v, %v", got, ok, err)
	}
	keys, err := c.DstKeys("INBOX/Sub")
	if err != nil || len(keys) != 2 || keys["d0"][1] != "c:abc" || keys["d1"][0] != "m:a@b" {
		t.Fatalf("DstKeys = %v, %v", keys, err)
	}
}

func TestLockedAndOtherJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.ckpt")
	c, err := Open(path, "job A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, "job A"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	c.Close()
	if _, err := Open(path, "job B"); !errors.Is(err, ErrOtherJob) {
		t.Fatalf("Open for another job: %v, want ErrOtherJob", err)
	}
}

func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ckpt")
	c, err := Open(good, "j")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		c.Add(Entry{SrcFolder: "INBOX", SrcID: string(rune('a' + i%26)), Record: Record{Key: "k"}})
	}
	c.Close()
	data, _ := os.ReadFile(good)
	tests := map[string][]byte{
		"truncated": data[:100],
		"garbage":   []byte("this is not a checkpoint, but a text file that somebody wrote here"),
		"zeroed":    make([]byte, len(data)),
		"empty":     {},
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".ckpt")
			os.WriteFile(p, content, 0o600)
			c, err := Open(p, "j")
			if err == nil {
				c.Close()
				t.Fatal("damaged checkpoint opened without error")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestReadOnlyMissingIsEmpty(t *testing.T) {
	c, err := OpenReadOnly(filepath.Join(t.TempDir(), "none.ckpt"), "j")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := c.ReadFolder("INBOX")
	if _, ok, _ := f.Get("x"); ok {
		t.Fatal("found a record in an empty checkpoint")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecordCodec(t *testing.T) {
	for _, r := range []Record{{}, {DstFolder: "a", DstID: "b", Key: "c", Flags: []string{"x", "y"}, Copied: true}} {
		got, err := decodeRecord(encodeRecord(r))
		if err != nil || got.DstFolder != r.DstFolder || got.DstID != r.DstID || got.Key != r.Key || len(got.Flags) != len(r.Flags) || got.Copied != r.Copied {
			t.Errorf("round trip %+v: %+v, %v", r, got, err)
		}
	}
	// A version 1 record (no Copied field) still reads.
	v1 := []byte{1, 1, 'a', 1, 'b', 1, 'c', 0}
	if got, err := decodeRecord(v1); err != nil || got.Key != "c" || got.Copied {
		t.Errorf("version 1 record: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {3}, {1, 5, 'a'}} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("decodeRecord(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(Record{DstFolder: "a", DstID: "b", Key: "c", Flags: []string{"x"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeRecord(b) // must not panic
	})
}

func TestPreviousRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.ckpt")
	c, _ := Open(path, "j")
	if unclean, _ := c.PreviousRun(); unclean {
		t.Fatal("a new checkpoint reports an unclean predecessor")
	}
	c.Close()
	c, _ = Open(path, "j")
	if unclean, _ := c.PreviousRun(); unclean {
		t.Fatal("a closed checkpoint reports an unclean predecessor")
	}
	// Not closed: as if killed. The file lock goes with the process; here
	// the handle is dropped without Close.
	c.db.Close()
	before := time.Now()
	c, err := Open(path, "j")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unclean, last := c.PreviousRun()
	if !unclean || last.After(before) || time.Since(last) > time.Minute {
		t.Fatalf("after a run that did not close: unclean %v, last commit %v", unclean, last)
	}
}

// A new checkpoint comes into being whole: no temporary file is left, and
// the first run is not taken for one that died.
func TestCreateIsWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new.ckpt")
	c, err := Open(p, "j")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if unclean, last := c.PreviousRun(); unclean || !last.IsZero() {
		t.Fatalf("a new checkpoint says there was a run before (unclean %v, last commit %v)", unclean, last)
	}
	if _, err := os.Stat(p + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// Intents are durable when Intend returns, and a record settles its
// intent in the same commit.
func TestIntents(t *testing.T) {
	p := filepath.Join(t.TempDir(), "i.ckpt")
	c, err := Open(p, "j")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if err := c.Intend("INBOX", id, "Dst"); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(Entry{SrcFolder: "INBOX", SrcID: "2", Record: Record{DstFolder: "Dst", DstID: "9"}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Intents("INBOX")
	if err != nil || len(got) != 2 || got["1"] != "Dst" || got["3"] != "Dst" {
		t.Fatalf("intents %v, %v", got, err)
	}
	ids, err := c.RecordedDstIDs("Dst")
	if err != nil || !ids["9"] || len(ids) != 1 {
		t.Fatalf("recorded IDs %v, %v", ids, err)
	}
	c.Close()
}

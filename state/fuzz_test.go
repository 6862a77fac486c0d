package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenCheckpoint: a damaged checkpoint file is reported, never taken as
// empty and never a panic.
func FuzzOpenCheckpoint(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("not a checkpoint"))
	f.Add(make([]byte, 8192))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return // a new, empty file is a new checkpoint
		}
		p := filepath.Join(t.TempDir(), "c.ckpt")
		os.WriteFile(p, b, 0o600)
		c, err := Open(p, "j")
		if err == nil {
			c.Close()
			t.Fatal("random bytes opened as a checkpoint")
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrOtherJob) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

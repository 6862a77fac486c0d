package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/source"
)

// Two messages of one folder with one Message-ID and other content are two
// messages under the default dedup: both copied, matched one to one
// against the destination, and found again without the checkpoint.
func TestSameMessageIDOtherContent(t *testing.T) {
	a := "Message-ID: <list@x>\r\nSubject: via the list\r\n\r\nbody\r\n"
	b := "Message-ID: <list@x>\r\nSubject: direct\r\n\r\nbody\r\n"
	src := memStore(t, msg{"INBOX", a})
	dst := memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	run(t, src, dst, ckpt, plan.Options{})
	// The direct copy arrives after the first run.
	src.Put(context.Background(), "INBOX", source.Message{Size: int64(len(b))}, strings.NewReader(b))
	s := run(t, src, dst, ckpt, plan.Options{})
	if s.Copied != 1 || s.SameMessageID != 1 || dst.Count("INBOX") != 2 {
		t.Fatalf("second run: copied %d, same Message-ID %d, destination %d", s.Copied, s.SameMessageID, dst.Count("INBOX"))
	}
	// Without the checkpoint each finds its own copy: nothing copied.
	os.Remove(ckpt)
	s = run(t, src, dst, ckpt, plan.Options{})
	if s.Copied != 0 || s.AlreadyPresent != 2 || dst.Count("INBOX") != 2 {
		t.Fatalf("without the checkpoint: copied %d, present %d, destination %d", s.Copied, s.AlreadyPresent, dst.Count("INBOX"))
	}
	// A third message with that ID and the content of the first is the
	// same message twice: a duplicate.
	src.Put(context.Background(), "INBOX", source.Message{Size: int64(len(a))}, strings.NewReader(a))
	s = run(t, src, dst, ckpt, plan.Options{})
	if s.Copied != 0 || dst.Count("INBOX") != 2 {
		t.Fatalf("a twin: copied %d, destination %d", s.Copied, dst.Count("INBOX"))
	}
}

// verify checks what the copy promised: with two messages sharing a
// Message-ID at the source and one copy at the destination, one is
// reported, deep or not.
func TestVerifySameMessageID(t *testing.T) {
	a := "Message-ID: <list@x>\r\nSubject: via the list\r\n\r\nbody\r\n"
	b := "Message-ID: <list@x>\r\nSubject: direct\r\n\r\nbody\r\n"
	src := memStore(t, msg{"INBOX", a}, msg{"INBOX", b}, msg{"INBOX", a})
	for _, deep := range []bool{false, true} {
		dst := memStore(t, msg{"INBOX", a})
		sum, err := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{Deep: deep})
		if err != nil || sum.Complete() || sum.Missing+sum.Differing != 1 || sum.Present != 2 {
			t.Fatalf("deep=%v: %+v, %v", deep, sum, err)
		}
		run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
		if sum, err := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{Deep: deep}); err != nil || !sum.Complete() {
			t.Fatalf("deep=%v after the copy: %+v, %v", deep, sum, err)
		}
	}
}

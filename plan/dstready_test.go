package plan_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/source"
)

type listingSource struct {
	*memory.Store
	a *askBoth
}

func (s listingSource) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	s.a.wait(&s.a.srcAsking, &s.a.dstAsking)
	return s.Store.List(ctx, folder, fn)
}

type creatingSink struct {
	*memory.Store
	a *askBoth
}

func (s creatingSink) CreateFolder(ctx context.Context, folder string) error {
	s.a.wait(&s.a.dstAsking, &s.a.srcAsking)
	return s.Store.CreateFolder(ctx, folder)
}

// The destination folder is made while the source folder is listed, not
// after: round trips to two servers that wait on nothing of each other.
// Everything is still copied once.
func TestDestinationReadiedWhileSourceLists(t *testing.T) {
	for _, mirror := range []bool{false, true} {
		a := &askBoth{}
		a.armed.Store(true)
		src := listingSource{memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"Sent", "Message-ID: <2@x>\r\n\r\n2\r\n"}), a}
		dst := creatingSink{memory.New(), a}
		sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{MirrorDeletes: mirror})
		if sum.Copied != 2 || dst.Count("INBOX") != 1 || dst.Count("Sent") != 1 {
			t.Fatalf("mirror %v: copied %d; destination holds %d and %d", mirror, sum.Copied, dst.Count("INBOX"), dst.Count("Sent"))
		}
		if !a.overlapped.Load() {
			t.Errorf("mirror %v: the destination folder was made only after the source's listing", mirror)
		}
	}
}

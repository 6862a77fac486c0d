package plan_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// warming records the folders a sink was told to warm, and whether any
// message reached a folder before it was warmed.
type warming struct {
	*memory.Store
	mu     sync.Mutex
	warmed map[string]int
	cold   []string
}

func (w *warming) Warm(_ context.Context, folder string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warmed[folder]++
}

func (w *warming) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	w.mu.Lock()
	if w.warmed[folder] == 0 {
		w.cold = append(w.cold, folder)
	}
	w.mu.Unlock()
	return w.Store.Put(ctx, folder, m, r)
}

// A sink that can get ready for a folder is told so once, before the
// folder's first copy; a re-run with nothing to copy and a dry run tell
// it nothing.
func TestSinkWarmedBeforeFirstCopy(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"INBOX", "Message-ID: <2@x>\r\n\r\n2\r\n"}, msg{"Sent", "Message-ID: <3@x>\r\n\r\n3\r\n"})
	dst := &warming{Store: memory.New(), warmed: map[string]int{}}
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	run(t, src, dst, ckpt, plan.Options{DryRun: true})
	if len(dst.warmed) != 0 {
		t.Fatalf("a dry run warmed %v", dst.warmed)
	}
	if sum := run(t, src, dst, ckpt, plan.Options{}); sum.Copied != 3 {
		t.Fatalf("copied %d of 3", sum.Copied)
	}
	if dst.warmed["INBOX"] != 1 || dst.warmed["Sent"] != 1 || len(dst.cold) != 0 {
		t.Fatalf("warmed %v; written before warming: %v", dst.warmed, dst.cold)
	}
	run(t, src, dst, ckpt, plan.Options{})
	if dst.warmed["INBOX"] != 1 || dst.warmed["Sent"] != 1 {
		t.Fatalf("a re-run with nothing to copy warmed: %v", dst.warmed)
	}
}

// lookahead is a source and destination where a Put into folder "A" or
// "B" waits (up to 2 s) until folder "C" is being listed, and
// which records how many folders were written at once.
type lookahead struct {
	*memory.Store
	listed  chan struct{}
	closes  bool // the source's: closes listed when C is listed
	once    sync.Once
	mu      sync.Mutex
	writing map[string]int
	most    int
	sawC    bool
}

func (l *lookahead) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	if folder == "C" && l.closes {
		l.once.Do(func() { close(l.listed) })
	}
	return l.Store.List(ctx, folder, fn)
}

func (l *lookahead) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	if folder == "A" || folder == "B" {
		select {
		case <-l.listed:
			l.mu.Lock()
			l.sawC = true
			l.mu.Unlock()
		case <-time.After(2 * time.Second):
		}
	}
	l.mu.Lock()
	l.writing[folder]++
	l.most = max(l.most, len(l.writing))
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.writing[folder]--; l.writing[folder] == 0 {
			delete(l.writing, folder)
		}
		l.mu.Unlock()
	}()
	return l.Store.Put(ctx, folder, m, r)
}

// With two folders written at a time, a third is listed while they are
// written, so that it is ready when a place frees; it does not write
// before then.
func TestNextFolderListedWhileOthersWrite(t *testing.T) {
	mem := memStore(t, msg{"A", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"A", "Message-ID: <2@x>\r\n\r\n2\r\n"}, msg{"B", "Message-ID: <3@x>\r\n\r\n3\r\n"}, msg{"C", "Message-ID: <4@x>\r\n\r\n4\r\n"})
	l := &lookahead{Store: mem, listed: make(chan struct{}), closes: true, writing: map[string]int{}}
	dst := &lookahead{Store: memory.New(), listed: l.listed, writing: map[string]int{}}
	sum := run(t, l, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{FolderParallelism: 2})
	if sum.Copied != 4 || dst.Count("A") != 2 || dst.Count("B") != 1 || dst.Count("C") != 1 {
		t.Fatalf("copied %d; destination holds %d, %d and %d", sum.Copied, dst.Count("A"), dst.Count("B"), dst.Count("C"))
	}
	if !dst.sawC {
		t.Error("folder C was listed only after folder A or B was written")
	}
	if dst.most > 2 {
		t.Errorf("%d folders written at once, with two at a time", dst.most)
	}
}

// Into a destination written one folder at a time (Maildir, mbox), no
// folder is listed ahead: there the disk is the limit, and a second
// listing held at once cost memory at scale.
func TestNoListingAheadOneFolderAtATime(t *testing.T) {
	mem := memStore(t, msg{"A", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"C", "Message-ID: <2@x>\r\n\r\n2\r\n"})
	l := &lookahead{Store: mem, listed: make(chan struct{}), closes: true, writing: map[string]int{}}
	dst := &lookahead{Store: memory.New(), listed: l.listed, writing: map[string]int{}}
	if sum := run(t, l, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{FolderParallelism: 1}); sum.Copied != 2 {
		t.Fatalf("copied %d of 2", sum.Copied)
	}
	if dst.sawC {
		t.Error("folder C was listed while folder A was written, with one folder at a time")
	}
}

package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/sourcetest"
	"github.com/mailferry/mailferry/state"
)

// The checkpoint never vouches alone: whatever happened to the destination
// between two runs, the second leaves every source message there, copying
// again what was lost and nothing that is still there, in every dedup mode.
func TestDestinationLossIsRefilled(t *testing.T) {
	fx := sourcetest.Generated("Work")
	for i := range 6 {
		fx = append(fx, sourcetest.Fixture{Name: fmt.Sprint("in", i), Folder: "INBOX", Content: fmt.Appendf(nil, "Message-ID: <in%d@x>\n\nbody %d\n", i, i), Date: time.Unix(1700000000, 0)})
	}
	count := func(dir string) int { return sourcetest.CountMaildir(dir) }
	losses := []struct {
		name string
		lose func(t *testing.T, dst string) // what happens to the destination tree
		lost int                            // messages it takes away
	}{
		{"destination removed", func(t *testing.T, dst string) { os.RemoveAll(dst) }, len(fx)},
		{"one folder emptied", func(t *testing.T, dst string) {
			files, _ := filepath.Glob(filepath.Join(dst, "cur", "*"))
			for _, f := range files {
				os.Remove(f)
			}
		}, 6},
		{"one message removed", func(t *testing.T, dst string) {
			files, _ := filepath.Glob(filepath.Join(dst, ".Work", "cur", "*"))
			os.Remove(files[0])
		}, 1},
		{"folder made again", func(t *testing.T, dst string) {
			os.RemoveAll(filepath.Join(dst, ".Work"))
			for _, d := range []string{"cur", "new", "tmp"} {
				os.MkdirAll(filepath.Join(dst, ".Work", d), 0o700)
			}
		}, len(fx) - 6},
	}
	for _, dedup := range []plan.Dedup{plan.DedupMessageID, plan.DedupContent, plan.DedupNone} {
		for _, loss := range losses {
			t.Run(string(dedup)+"/"+loss.name, func(t *testing.T) {
				src, dst := maildirPair(t, srcmaildir.LayoutMaildirPP)
				sinktest.Put(t, src, fx)
				ckpt := filepath.Join(t.TempDir(), "ckpt")
				opt := plan.Options{Dedup: dedup}
				if s := run(t, src, dst, ckpt, opt); s.Copied != len(fx) {
					t.Fatalf("first run copied %d of %d", s.Copied, len(fx))
				}
				if s := run(t, src, dst, ckpt, opt); s.Copied != 0 || s.AlreadyPresent != len(fx) {
					t.Fatalf("no-op run: %+v", s)
				}
				loss.lose(t, dst.Root())
				s := run(t, src, dst, ckpt, opt)
				if s.Copied != loss.lost || s.Recopied != loss.lost || s.AlreadyPresent != len(fx)-loss.lost {
					t.Fatalf("after the loss: copied %d, recopied %d, present %d; want %d, %d, %d (%+v)", s.Copied, s.Recopied, s.AlreadyPresent, loss.lost, loss.lost, len(fx)-loss.lost, s.Errors)
				}
				if n := count(dst.Root()); n != len(fx) {
					t.Fatalf("destination holds %d messages, want %d", n, len(fx))
				}
				if s := run(t, src, dst, ckpt, opt); s.Copied != 0 {
					t.Fatalf("run after the refill copied %d", s.Copied)
				}
			})
		}
	}
}

// An unchanged destination is believed without a listing; one that only
// gained messages of its own (a new server in use during a migration) is
// believed too, and one that lost any is listed.
func TestDestinationStateDecidesListing(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\na\r\n"}, msg{"INBOX", "Message-ID: <2@x>\r\n\r\nb\r\n"})
	dst := &listCounter{Store: memory.New()}
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	run(t, src, dst, ckpt, plan.Options{})
	dst.lists.Store(0)
	if s := run(t, src, dst, ckpt, plan.Options{}); s.AlreadyPresent != 2 || dst.lists.Load() != 0 {
		t.Fatalf("unchanged destination: %d present, listed %d times", s.AlreadyPresent, dst.lists.Load())
	}
	dst.Remove("INBOX", "1")
	if s := run(t, src, dst, ckpt, plan.Options{}); s.Recopied != 1 || dst.lists.Load() == 0 || dst.Count("INBOX") != 2 {
		t.Fatalf("after a removal: recopied %d, listed %d times, %d held", s.Recopied, dst.lists.Load(), dst.Count("INBOX"))
	}
}

type listCounter struct {
	*memory.Store
	lists atomic.Int32
}

func (l *listCounter) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	l.lists.Add(1)
	return l.Store.List(ctx, folder, fn)
}

// With --dedup none nothing but the checkpoint tells a copy made from a
// copy still to make. A run that dies between a write and its record
// leaves a write intent, and the next run finds that copy by content
// instead of making a second one; two source messages with the same
// content still get a copy each.
func TestDedupNoneExactlyOnceAfterCrash(t *testing.T) {
	body := "Subject: same\r\n\r\nidentical\r\n"
	for stopAt := 1; stopAt <= 4; stopAt++ {
		src := memStore(t, msg{"INBOX", body}, msg{"INBOX", body}, msg{"INBOX", "Subject: other\r\n\r\nx\r\n"}, msg{"INBOX", body})
		dst := memory.New()
		ctx, cancel := context.WithCancel(context.Background())
		var puts atomic.Int32
		dst.AfterPut = func(string, string) error {
			if int(puts.Add(1)) == stopAt {
				cancel() // the process dies with this copy stored, unrecorded
				return context.Canceled
			}
			return nil
		}
		ckpt := filepath.Join(t.TempDir(), "ckpt")
		c, err := state.Open(ckpt, "test job")
		if err != nil {
			t.Fatal(err)
		}
		_, err = plan.Run(ctx, src, dst, c, plan.Options{Dedup: plan.DedupNone, Workers: 1})
		c.Close()
		if !errors.Is(err, plan.ErrInterrupted) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		dst.AfterPut = nil
		s := run(t, src, dst, ckpt, plan.Options{Dedup: plan.DedupNone})
		if dst.Count("INBOX") != 4 || s.Copied != 4-stopAt {
			t.Fatalf("stop at %d: destination holds %d of 4; the resumed run copied %d (%+v)", stopAt, dst.Count("INBOX"), s.Copied, s)
		}
	}
}

// askBoth is a source and a destination that each, asked for a folder's
// state, wait for the other to be asked too (or 2 s): overlapped is set
// when both were being asked at once.
type askBoth struct {
	armed                atomic.Bool // waits only while set
	srcAsking, dstAsking atomic.Bool
	overlapped           atomic.Bool
}

func (a *askBoth) wait(mine, other *atomic.Bool) {
	if !a.armed.Load() {
		return
	}
	mine.Store(true)
	defer mine.Store(false)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if a.overlapped.Load() {
			return // the other one saw this one
		}
		if other.Load() {
			a.overlapped.Store(true)
			a.armed.Store(false) // seen: later calls need not wait
			return
		}
	}
}

type statedSource struct {
	*memory.Store
	a *askBoth
}

func (s statedSource) State(context.Context, string) (string, error) {
	s.a.wait(&s.a.srcAsking, &s.a.dstAsking)
	return "unchanged", nil
}

type statedSink struct {
	*memory.Store
	a *askBoth
}

func (s statedSink) FolderState(ctx context.Context, folder string) (sink.FolderState, error) {
	s.a.wait(&s.a.dstAsking, &s.a.srcAsking)
	return s.Store.FolderState(ctx, folder)
}

// A re-run asks the source whether a folder changed and the destination
// whether it kept what was recorded at once, not one after the other: a
// round trip each, to two servers.
func TestSourceAndDestinationAskedAtOnce(t *testing.T) {
	a := &askBoth{}
	src := statedSource{memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}), a}
	dst := statedSink{memory.New(), a}
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	run(t, src, dst, ckpt, plan.Options{})
	a.armed.Store(true)
	if sum := run(t, src, dst, ckpt, plan.Options{}); sum.AlreadyPresent != 1 || sum.Copied != 0 {
		t.Fatalf("re-run: %+v", sum)
	}
	if !a.overlapped.Load() {
		t.Error("the source's state and the destination's were asked one after the other")
	}
}

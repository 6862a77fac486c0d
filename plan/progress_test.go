package plan_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

// recorder is a plan.Progress that keeps what it was told.
type recorder struct {
	mu                        sync.Mutex
	expected, expects         int
	queued, finished, settled int
	queuedBeforeExpect        int
}

func (r *recorder) Listing(string) {}
func (r *recorder) Queued(int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queued++
	if r.expects == 0 {
		r.queuedBeforeExpect++
	}
}
func (r *recorder) Finished(int64) { r.mu.Lock(); r.finished++; r.mu.Unlock() }
func (r *recorder) Expect(n int)   { r.mu.Lock(); r.expected = n; r.expects++; r.mu.Unlock() }
func (r *recorder) Settled(n int)  { r.mu.Lock(); r.settled += n; r.mu.Unlock() }

// TestProgressKnowsTheTotal: from a source that can count, the bar hears
// the whole run's size once, before anything is queued, and every message
// is accounted for by the end (copied, or decided without a copy), on a
// first run and on a re-run that copies nothing.
func TestProgressKnowsTheTotal(t *testing.T) {
	src, dst := maildirPair(t, srcmaildir.LayoutMaildirPP)
	n := 0
	for _, folder := range []string{"INBOX", "A", "B"} {
		src.CreateFolder(context.Background(), folder)
		for i := range 7 {
			body := fmt.Sprintf("Message-ID: <%s-%d@x>\r\n\r\n%s", folder, i, strings.Repeat("x", i))
			if _, err := src.Put(context.Background(), folder, source.Message{Size: int64(len(body))}, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	ckpt := t.TempDir() + "/ckpt"
	for _, pass := range []string{"first run", "re-run"} {
		r := &recorder{}
		run(t, src, dst, ckpt, plan.Options{Progress: r})
		if r.expects != 1 || r.expected != n || r.queuedBeforeExpect != 0 {
			t.Errorf("%s: Expect called %d times with %d (want once with %d), %d queued before it", pass, r.expects, r.expected, n, r.queuedBeforeExpect)
		}
		if r.settled+r.finished != n || r.finished != r.queued {
			t.Errorf("%s: settled %d + finished %d of %d (queued %d)", pass, r.settled, r.finished, n, r.queued)
		}
	}
}

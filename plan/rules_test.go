package plan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/source"
)

func folderTree(t *testing.T, names ...string) *memory.Store {
	var msgs []msg
	for _, n := range names {
		msgs = append(msgs, msg{n, fmt.Sprintf("Message-ID: <%s@x>\r\n\r\nin %s\r\n", n, n)})
	}
	return memStore(t, msgs...)
}

// destinations runs a plan and returns "source -> destination (why)" for
// every folder it selected.
func destinations(t *testing.T, src source.Source, dst sink.Sink, rules plan.FolderRules) []string {
	t.Helper()
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Folders: rules, DryRun: true})
	var out []string
	for _, f := range sum.Folders {
		s := f.Name + " -> " + f.Destination
		if f.MappedBy != "" {
			s += " (" + f.MappedBy + ")"
		}
		out = append(out, s)
	}
	return out
}

func TestFolderRules(t *testing.T) {
	names := []string{"INBOX", "Archive/2023", "Archive/2024", "Archive/2024/Q1", "Gesendete Elemente", "Papierkorb", "Projects/Sent", "Spam"}
	dst := memory.New()
	for _, f := range []string{"Sent", "Trash", "Junk"} {
		dst.CreateFolder(context.Background(), f)
	}
	dst.Roles = map[string]string{"Junk": `\Junk`} // Sent and Trash are known by name only
	tests := []struct {
		name  string
		rules plan.FolderRules
		want  []string
	}{
		{"default: roles by name on both sides", plan.FolderRules{}, []string{
			"INBOX -> INBOX", "Archive/2023 -> Archive/2023", "Archive/2024 -> Archive/2024", "Archive/2024/Q1 -> Archive/2024/Q1",
			`Gesendete Elemente -> Sent (special-use \Sent (by name))`, `Papierkorb -> Trash (special-use \Trash (by name))`,
			"Projects/Sent -> Projects/Sent", `Spam -> Junk (special-use \Junk (by name))`}},
		{"include with %", plan.FolderRules{Include: []string{"Archive/%"}}, []string{"Archive/2023 -> Archive/2023", "Archive/2024 -> Archive/2024"}},
		{"include with *", plan.FolderRules{Include: []string{"Archive/*"}}, []string{"Archive/2023 -> Archive/2023", "Archive/2024 -> Archive/2024", "Archive/2024/Q1 -> Archive/2024/Q1"}},
		{"exclude wins", plan.FolderRules{Include: []string{"*"}, Exclude: []string{"Archive*", "Spam", "Papierkorb"}}, []string{
			"INBOX -> INBOX", `Gesendete Elemente -> Sent (special-use \Sent (by name))`, "Projects/Sent -> Projects/Sent"}},
		{"inbox in any case", plan.FolderRules{Include: []string{"inbox"}}, []string{"INBOX -> INBOX"}},
		{"map", plan.FolderRules{Include: []string{"INBOX", "Spam"}, Map: map[string]string{"INBOX": "Old/Inbox", "Spam": "Quarantine"}}, []string{
			"INBOX -> Old/Inbox (folders.map)", "Spam -> Quarantine (folders.map)"}},
		{"prefix", plan.FolderRules{Include: []string{"INBOX", "Gesendete Elemente"}, Prefix: "Restored/2026-11-26/"}, []string{
			"INBOX -> Restored/2026-11-26/INBOX (folders.prefix)", "Gesendete Elemente -> Restored/2026-11-26/Gesendete Elemente (folders.prefix)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := destinations(t, folderTree(t, names...), dst, tt.rules)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// The rules do what plan said: a real run writes where the plan showed.
func TestFolderRulesCopy(t *testing.T) {
	src := folderTree(t, "INBOX", "Archive/2023", "Spam")
	dst := memory.New()
	rules := plan.FolderRules{Exclude: []string{"Spam"}, Prefix: "Restored"}
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Folders: rules})
	if sum.Copied != 2 || dst.Count("Restored/INBOX") != 1 || dst.Count("Restored/Archive/2023") != 1 || dst.Count("Spam") != 0 || dst.Count("Restored/Spam") != 0 {
		t.Fatalf("copied %d; INBOX %d, Archive %d", sum.Copied, dst.Count("Restored/INBOX"), dst.Count("Restored/Archive/2023"))
	}
}

func TestFilters(t *testing.T) {
	src := memory.New()
	day := func(d int) time.Time { return time.Date(2024, 1, d, 12, 0, 0, 0, time.UTC) }
	for i, size := range []int{100, 1000, 10000, 100000} {
		body := fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%s", i, strings.Repeat("x", size))
		src.Put(context.Background(), "INBOX", source.Message{Size: int64(len(body)), Date: day(i + 1)}, strings.NewReader(body))
	}
	tests := []struct {
		name   string
		filter plan.Filter
		copied int
	}{
		{"none", plan.Filter{}, 4},
		{"max size", plan.Filter{MaxSize: 5000}, 2},
		{"min size", plan.Filter{MinSize: 5000}, 2},
		{"since", plan.Filter{Since: day(2)}, 3},
		{"before", plan.Filter{Before: day(2)}, 1},
		{"since and before, size", plan.Filter{Since: day(2), Before: day(4), MaxSize: 5000}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := memory.New()
			sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Filter: tt.filter})
			if sum.Copied != tt.copied || sum.Filtered != 4-tt.copied || dst.Count("INBOX") != tt.copied || sum.Folders[0].Filtered != 4-tt.copied {
				t.Fatalf("copied %d, filtered %d (folder %d); want %d, %d", sum.Copied, sum.Filtered, sum.Folders[0].Filtered, tt.copied, 4-tt.copied)
			}
		})
	}
}

// Folders copied in parallel: every message once, folders that share a
// destination (here by special use) kept in one group, the summary in
// the order the folders were found.
func TestFolderParallelism(t *testing.T) {
	var msgs []msg
	names := []string{"INBOX", "A", "B", "C/D", "Gesendet", "Sent Items", "Z"}
	for _, n := range names {
		for i := range 40 {
			msgs = append(msgs, msg{n, fmt.Sprintf("Message-ID: <%s-%d@x>\r\n\r\n%d\r\n", n, i, i)})
		}
	}
	src := memStore(t, msgs...)
	dst := memory.New()
	dst.CreateFolder(context.Background(), "Sent")
	dst.Roles = map[string]string{"Sent": `\Sent`}
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{FolderParallelism: 3, Workers: 6})
	if sum.Copied != len(msgs) || dst.Count("Sent") != 80 || dst.Count("INBOX") != 40 || dst.Count("C/D") != 40 {
		t.Fatalf("copied %d of %d; Sent %d", sum.Copied, len(msgs), dst.Count("Sent"))
	}
	var got []string
	for _, f := range sum.Folders {
		got = append(got, f.Name)
	}
	if want := []string{"INBOX", "A", "B", "C/D", "Gesendet", "Sent Items", "Z"}; !slices.Equal(got, want) {
		t.Fatalf("summary order %q, want %q", got, want)
	}
	if s := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt2"), plan.Options{FolderParallelism: 3}); s.Copied != 0 || s.AlreadyPresent != len(msgs) {
		t.Fatalf("re-run without the checkpoint: %+v", s)
	}
}

// inFlight is a destination that counts the Puts in progress, in all and
// by folder, and holds each until its folder has want in flight at once
// (or a second has passed).
type inFlight struct {
	*memory.Store
	want     int
	mu       sync.Mutex
	now, max int
	folder   map[string]int
	reached  map[string]bool
}

func (s *inFlight) Put(ctx context.Context, folder string, m source.Message, body io.Reader) (string, error) {
	s.mu.Lock()
	s.now++
	s.max = max(s.max, s.now)
	s.folder[folder]++
	if s.folder[folder] >= s.want {
		s.reached[folder] = true
	}
	for deadline := time.Now().Add(time.Second); !s.reached[folder] && time.Now().Before(deadline); {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	s.now--
	s.folder[folder]--
	s.mu.Unlock()
	return s.Store.Put(ctx, folder, m, body)
}

// The workers are the run's, not a fixed share of each folder's: never
// more messages in flight than Workers, and a folder copied alone (the
// last, here the largest) has them all.
func TestWorkersShared(t *testing.T) {
	var msgs []msg
	for _, f := range []struct {
		name string
		n    int
	}{{"A", 2}, {"B", 2}, {"Big", 60}} {
		for i := range f.n {
			msgs = append(msgs, msg{f.name, fmt.Sprintf("Message-ID: <%s-%d@x>\r\n\r\n%d\r\n", f.name, i, i)})
		}
	}
	dst := &inFlight{Store: memory.New(), want: 6, folder: map[string]int{}, reached: map[string]bool{}}
	sum := run(t, memStore(t, msgs...), dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{FolderParallelism: 3, Workers: 6})
	if sum.Copied != len(msgs) {
		t.Fatalf("copied %d of %d", sum.Copied, len(msgs))
	}
	if dst.max > 6 {
		t.Errorf("%d messages in flight at once, more than the 6 workers", dst.max)
	}
	if !dst.reached["Big"] {
		t.Errorf("folder Big, copied alone once A and B were done, never had the 6 workers in flight")
	}
}

// farInFlight is an inFlight destination that wants more in flight,
// as an IMAP server far away does (sink.InFlightTuner).
type farInFlight struct {
	*inFlight
	more int
}

func (s *farInFlight) InFlight(workers int) int { return max(workers, s.more) }

// A destination that wants more messages in flight than the workers gets
// them, unless the user chose the count.
func TestInFlightTuned(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chosen  bool
		wantMax int
	}{
		{"default", false, 8},
		{"--workers chosen", true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []msg
			for i := range 8 {
				msgs = append(msgs, msg{"INBOX", fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%d\r\n", i, i)})
			}
			dst := &farInFlight{&inFlight{Store: memory.New(), want: 8, folder: map[string]int{}, reached: map[string]bool{}}, 8}
			sum := run(t, memStore(t, msgs...), dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Workers: 4, WorkersChosen: tc.chosen})
			if sum.Copied != len(msgs) {
				t.Fatalf("copied %d of %d", sum.Copied, len(msgs))
			}
			if dst.max != tc.wantMax {
				t.Errorf("%d messages in flight at once, want %d", dst.max, tc.wantMax)
			}
		})
	}
}

// A day's byte budget stops a run cleanly where it is reached; the next
// run the same day copies nothing more; nothing is copied twice.
func TestByteBudget(t *testing.T) {
	var msgs []msg
	for i := range 10 {
		msgs = append(msgs, msg{"INBOX", fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%s", i, strings.Repeat("x", 1000))})
	}
	src, dst := memStore(t, msgs...), memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	size := int64(len(msgs[0].body))
	opt := plan.Options{Workers: 1, Limits: plan.Limits{ByteBudget: 3*size + size/2}}
	sum := run(t, src, dst, ckpt, opt)
	if !sum.BudgetReached || sum.Copied != 3 || dst.Count("INBOX") != 3 {
		t.Fatalf("first run: copied %d, budget reached %v", sum.Copied, sum.BudgetReached)
	}
	sum = run(t, src, dst, ckpt, opt)
	if !sum.BudgetReached || sum.Copied != 0 || sum.AlreadyPresent != 3 {
		t.Fatalf("second run the same day: copied %d, present %d, budget reached %v", sum.Copied, sum.AlreadyPresent, sum.BudgetReached)
	}
	opt.Limits.ByteBudget = 0
	if sum := run(t, src, dst, ckpt, opt); sum.BudgetReached || sum.Copied != 7 || dst.Count("INBOX") != 10 {
		t.Fatalf("without a budget: copied %d, destination %d", sum.Copied, dst.Count("INBOX"))
	}
}

// TestByteBudgetAcrossDays: a message larger than the whole budget is
// named and skipped (never a stop every day at the same place); the rest
// stops at the budget and goes on the next UTC day; raising the budget
// copies the big one.
func TestByteBudgetAcrossDays(t *testing.T) {
	msgs := []msg{{"INBOX", "Message-ID: <big@x>\r\n\r\n" + strings.Repeat("x", 5000)}}
	for i := range 3 {
		msgs = append(msgs, msg{"INBOX", fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%s", i, strings.Repeat("x", 1000))})
	}
	src, dst := memStore(t, msgs...), memory.New()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	day := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	opt := plan.Options{Workers: 1, Limits: plan.Limits{ByteBudget: 2500, Now: func() time.Time { return day }}}
	steps := []struct {
		what                    string
		advance                 time.Duration
		budget                  int64
		copied, failed, atDst   int
		reached, namesTheBigOne bool
	}{
		{"day 1", 0, 2500, 2, 1, 2, true, true},
		{"day 1 again", 0, 2500, 0, 1, 2, true, true},
		{"day 2 (an hour later, past midnight UTC)", time.Hour, 2500, 1, 1, 3, false, true},
		{"budget raised", 0, 10000, 1, 0, 4, false, false},
	}
	for _, st := range steps {
		day = day.Add(st.advance)
		opt.Limits.ByteBudget = st.budget
		sum, err := runErr(t, src, dst, ckpt, opt)
		if err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		named := len(sum.Errors) == 1 && strings.Contains(sum.Errors[0].Message, "big@x") && strings.Contains(sum.Errors[0].Error, "daily_byte_budget")
		if sum.Copied != st.copied || sum.Failed != st.failed || dst.Count("INBOX") != st.atDst || sum.BudgetReached != st.reached || named != st.namesTheBigOne {
			t.Errorf("%s: copied %d failed %d at the destination %d, budget reached %v, errors %v", st.what, sum.Copied, sum.Failed, dst.Count("INBOX"), sum.BudgetReached, sum.Errors)
		}
	}
}

// The rates hold: a run cannot go faster than its limits allow.
func TestRateLimits(t *testing.T) {
	var msgs []msg
	for i := range 11 {
		msgs = append(msgs, msg{"INBOX", fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%s", i, strings.Repeat("y", 10000))})
	}
	for _, tt := range []struct {
		name    string
		limits  plan.Limits
		atLeast time.Duration
	}{
		// 11 messages at 20/s: 10 waits of 50 ms.
		{"messages", plan.Limits{MessagesPerSecond: 20}, 450 * time.Millisecond},
		// 110 KB at 40 KB/s, after a burst of 64 KiB: more than a second.
		{"bytes", plan.Limits{BytesPerSecond: 40000}, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := memStore(t, msgs...), memory.New()
			start := time.Now()
			sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Limits: tt.limits})
			if sum.Copied != 11 {
				t.Fatalf("copied %d", sum.Copied)
			}
			if took := time.Since(start); took < tt.atLeast {
				t.Fatalf("took %v, less than the limits allow (%v)", took, tt.atLeast)
			}
		})
	}
}

// A server's backoff request holds the whole account: after one message
// is told to wait, no other message starts before the time is up.
func TestBackoffHoldsEveryWorker(t *testing.T) {
	var msgs []msg
	for i := range 20 {
		msgs = append(msgs, msg{"INBOX", fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n%d\r\n", i, i)})
	}
	src, dst := memStore(t, msgs...), memory.New()
	var mu sync.Mutex
	var told time.Time
	var startedDuring int
	const hold = 300 * time.Millisecond
	// Each store takes 20 ms, so without the hold the other workers would
	// go on starting messages all through it. The planner hears of the
	// backoff only when the told message's Put returns, so starts in the
	// first 50 ms (a loaded machine may delay that) are not counted.
	const grace, work = 50 * time.Millisecond, 20 * time.Millisecond
	dst.BeforePut = func(string, source.Message) error {
		mu.Lock()
		now := time.Now()
		if told.IsZero() {
			told = now
			mu.Unlock()
			return &source.TransientError{Err: errors.New("BAD Request is throttled. Suggested Backoff Time: 300 milliseconds"), Delay: hold}
		}
		if since := now.Sub(told); since > grace && since < hold-20*time.Millisecond {
			startedDuring++
		}
		mu.Unlock()
		time.Sleep(work)
		return nil
	}
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Workers: 4, RetryBase: time.Millisecond})
	if sum.Copied != 20 || sum.Retries != 1 {
		t.Fatalf("copied %d, retries %d", sum.Copied, sum.Retries)
	}
	if startedDuring > 0 {
		t.Fatalf("%d messages started while the server had asked to back off", startedDuring)
	}
}

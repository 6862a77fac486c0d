package plan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink"
	sinkmaildir "github.com/mailferry/mailferry/sink/maildir"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/sourcetest"
	"github.com/mailferry/mailferry/state"
)

func run(t *testing.T, src source.Source, dst sink.Sink, ckptPath string, opt plan.Options) *plan.Summary {
	t.Helper()
	sum, err := runErr(t, src, dst, ckptPath, opt)
	if err != nil {
		t.Fatalf("run: %v (summary %+v)", err, sum)
	}
	return sum
}

func runErr(t *testing.T, src source.Source, dst sink.Sink, ckptPath string, opt plan.Options) (*plan.Summary, error) {
	t.Helper()
	c, err := state.Open(ckptPath, "test job")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return plan.Run(context.Background(), src, dst, c, opt)
}

func maildirPair(t *testing.T, layout srcmaildir.Layout) (src *sinkmaildir.Sink, dst *sinkmaildir.Sink) {
	dir := t.TempDir()
	src, err := sinkmaildir.New(filepath.Join(dir, "src"), layout, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err = sinkmaildir.New(filepath.Join(dir, "dst"), layout, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src, dst
}

// Every corpus message, filed into folders with flags and keywords, comes
// through Maildir to Maildir byte for byte (line endings aside) with its
// flags, keywords and date, in both layouts: the destination passes the
// source conformance suite against the same fixtures.
func TestMaildirToMaildirCorpus(t *testing.T) {
	for _, layout := range []srcmaildir.Layout{srcmaildir.LayoutMaildirPP, srcmaildir.LayoutFS} {
		t.Run(layout.String(), func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Opt{
				New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
					src, dst := maildirPair(t, layout)
					sinktest.Put(t, src, fx)
					sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Dedup: plan.DedupNone})
					if sum.Copied != len(fx) || sum.Failed != 0 {
						t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(fx), sum.Failed, sum.Errors)
					}
					return dst
				},
			})
		})
	}
}

// Re-running copies nothing, and neither does re-running without the
// checkpoint: the destination is listed and deduplicated against.
func TestRerunAndLostCheckpoint(t *testing.T) {
	fx := append(sourcetest.Corpus(t), sourcetest.Generated("Generated")...)
	for _, dedup := range []plan.Dedup{plan.DedupMessageID, plan.DedupContent} {
		t.Run(string(dedup), func(t *testing.T) {
			src, dst := maildirPair(t, srcmaildir.LayoutMaildirPP)
			sinktest.Put(t, src, fx)
			ckpt := filepath.Join(t.TempDir(), "ckpt")
			opt := plan.Options{Dedup: dedup}
			first := run(t, src, dst, ckpt, opt)
			if first.Copied == 0 || first.Copied+first.DuplicatesSkipped != len(fx) || first.Failed != 0 {
				t.Fatalf("first run: %d copied + %d duplicates of %d, %d failed", first.Copied, first.DuplicatesSkipped, len(fx), first.Failed)
			}
			copiedFiles := sourcetest.CountMaildir(dst.Root())
			if copiedFiles != first.Copied {
				t.Fatalf("destination holds %d files, summary says %d copied", copiedFiles, first.Copied)
			}
			again := run(t, src, dst, ckpt, opt)
			if again.Copied != 0 || again.AlreadyPresent != len(fx) {
				t.Fatalf("re-run: %d copied, %d already present; want 0 and %d", again.Copied, again.AlreadyPresent, len(fx))
			}
			os.Remove(ckpt)
			lost := run(t, src, dst, ckpt, opt)
			if lost.Copied != 0 || lost.AlreadyPresent+lost.DuplicatesSkipped != len(fx) {
				t.Fatalf("run without checkpoint: %d copied, %d present, %d duplicates", lost.Copied, lost.AlreadyPresent, lost.DuplicatesSkipped)
			}
			if n := sourcetest.CountMaildir(dst.Root()); n != copiedFiles {
				t.Fatalf("destination holds %d files after re-runs, want %d", n, copiedFiles)
			}
			// And the re-run after that is fast again: everything is in
			// the checkpoint once more.
			if s := run(t, src, dst, ckpt, opt); s.Copied != 0 || s.AlreadyPresent != len(fx) {
				t.Fatalf("third run: %+v", s)
			}
		})
	}
}

type msg struct{ folder, body string }

func memStore(t *testing.T, msgs ...msg) *memory.Store {
	s := memory.New()
	for _, m := range msgs {
		s.CreateFolder(context.Background(), m.folder)
		if _, err := s.Put(context.Background(), m.folder, source.Message{Size: int64(len(m.body)), Flags: []string{`\Seen`}}, strings.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestDedupModes(t *testing.T) {
	a := "Message-ID: <1@x>\r\nSubject: a\r\n\r\na\r\n"
	b := "Message-ID: <1@X>\r\nSubject: b, same Message-ID, other content\r\n\r\nb\r\n"
	c := "Subject: c, no Message-ID\r\n\r\nc\r\n"
	cLF := "Subject: c, no Message-ID\n\nc\n" // c with other line endings
	e := "Message-ID: <2@x>\r\nSubject: e\r\n\r\ne\r\n"
	msgs := []msg{{"INBOX", a}, {"INBOX", b}, {"INBOX", c}, {"INBOX", cLF}, {"INBOX", a}, {"INBOX", e}, {"Other", a}}
	tests := []struct {
		dedup            plan.Dedup
		preexisting      []msg
		copied, dup, pre int
		inbox            []string
	}{
		// b shares a's Message-ID with other content: a message of its own.
		{plan.DedupMessageID, nil, 5, 2, 0, []string{a, b, c, e}},
		{plan.DedupContent, nil, 5, 2, 0, []string{a, b, c, e}},
		{plan.DedupNone, nil, 7, 0, 0, []string{a, b, c, cLF, a, e}},
		// Already at the destination, put there by something else.
		// a matches the copy another tool changed; b, another message with
		// a's Message-ID, finds no second copy and is copied.
		{plan.DedupMessageID, []msg{{"INBOX", "Message-ID: <1@x>\r\n\r\nother body\r\n"}, {"INBOX", c}}, 3, 0, 4, []string{"Message-ID: <1@x>\r\n\r\nother body\r\n", c, b, e}},
		{plan.DedupContent, []msg{{"INBOX", "Message-ID: <1@x>\r\n\r\nother body\r\n"}, {"INBOX", cLF}}, 4, 1, 2, []string{"Message-ID: <1@x>\r\n\r\nother body\r\n", cLF, a, b, e}},
	}
	for _, tt := range tests {
		t.Run(string(tt.dedup), func(t *testing.T) {
			src := memStore(t, msgs...)
			dst := memStore(t, tt.preexisting...)
			sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Dedup: tt.dedup, Workers: 1})
			if sum.Copied != tt.copied || sum.DuplicatesSkipped != tt.dup || sum.AlreadyPresent != tt.pre {
				t.Errorf("copied %d, duplicates %d, present %d; want %d, %d, %d", sum.Copied, sum.DuplicatesSkipped, sum.AlreadyPresent, tt.copied, tt.dup, tt.pre)
			}
			var got []string
			for _, b := range dst.Bodies("INBOX") {
				got = append(got, string(b))
			}
			if !slices.Equal(got, tt.inbox) {
				t.Errorf("INBOX holds %q, want %q", got, tt.inbox)
			}
			// Dedup is per destination folder: "Other" gets its copy.
			if dst.Count("Other") != 1 {
				t.Errorf("Other holds %d messages, want 1", dst.Count("Other"))
			}
		})
	}
}

// A failed Put is reported and retried on the next run, and every message
// ends up at the destination exactly once, whichever Put fails.
func TestFailedPutThenResume(t *testing.T) {
	var msgs []msg
	for i := range 12 {
		msgs = append(msgs, msg{[]string{"INBOX", "A", "B"}[i%3], "Message-ID: <" + string(rune('a'+i)) + "@x>\r\n\r\nbody\r\n"})
	}
	for k := 1; k <= len(msgs); k++ {
		src := memStore(t, msgs...)
		dst := memory.New()
		var n atomic.Int32
		dst.BeforePut = func(string, source.Message) error {
			if int(n.Add(1)) == k {
				return errors.New("injected failure")
			}
			return nil
		}
		ckpt := filepath.Join(t.TempDir(), "ckpt")
		sum := run(t, src, dst, ckpt, plan.Options{Workers: 3})
		if sum.Failed != 1 || sum.Copied != len(msgs)-1 || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0].Error, "injected failure") {
			t.Fatalf("k=%d: %+v", k, sum)
		}
		dst.BeforePut = nil
		sum = run(t, src, dst, ckpt, plan.Options{Workers: 3})
		if sum.Failed != 0 || sum.Copied != 1 {
			t.Fatalf("k=%d resume: copied %d failed %d", k, sum.Copied, sum.Failed)
		}
		if total := dst.Count("INBOX") + dst.Count("A") + dst.Count("B"); total != len(msgs) {
			t.Fatalf("k=%d: destination holds %d messages, want %d", k, total, len(msgs))
		}
	}
}

// When a message fails, a duplicate that waited on it is copied instead, so
// the content is not lost to the other's failure.
func TestDuplicateStandsInForFailedCopy(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <same@x>\r\n\r\nfirst\r\n"}, msg{"INBOX", "Message-ID: <same@x>\r\n\r\nsecond\r\n"})
	dst := memory.New()
	dst.BeforePut = func(_ string, m source.Message) error {
		if m.ID == "1" {
			return errors.New("refused")
		}
		return nil
	}
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Workers: 1})
	if sum.Copied != 1 || sum.Failed != 1 || dst.Count("INBOX") != 1 || !bytes.Contains(dst.Bodies("INBOX")[0], []byte("second")) {
		t.Fatalf("%+v, destination %q", sum, dst.Bodies("INBOX"))
	}
}

func TestFlagsCarriedOnRerun(t *testing.T) {
	for _, name := range []string{"memory", "maildir"} {
		t.Run(name, func(t *testing.T) {
			var src, dst sink.Sink
			if name == "memory" {
				src, dst = memStore(t, msg{"INBOX", "Message-ID: <f@x>\r\n\r\nx\r\n"}), memory.New()
			} else {
				s, d := maildirPair(t, srcmaildir.LayoutMaildirPP)
				sinktest.Put(t, s, []sourcetest.Fixture{{Name: "f", Folder: "INBOX", Content: []byte("Message-ID: <f@x>\n\nx\n"), Flags: []string{`\Seen`}}})
				src, dst = s, d
			}
			ckpt := filepath.Join(t.TempDir(), "ckpt")
			run(t, src, dst, ckpt, plan.Options{})
			var id string
			src.List(context.Background(), "INBOX", func(m source.Message) error { id = m.ID; return nil })
			want := []string{`\Answered`, `\Flagged`, "$Label1"}
			if err := src.(sink.FlagSetter).SetFlags(context.Background(), "INBOX", id, want); err != nil {
				t.Fatal(err)
			}
			sum := run(t, src, dst, ckpt, plan.Options{})
			if sum.FlagsUpdated != 1 || sum.Copied != 0 {
				t.Fatalf("re-run: %+v", sum)
			}
			var got []string
			dst.List(context.Background(), "INBOX", func(m source.Message) error { got = m.Flags; return nil })
			if !source.SameFlags(got, want) {
				t.Fatalf("destination flags %q, want %q", got, want)
			}
			if sum := run(t, src, dst, ckpt, plan.Options{}); sum.FlagsUpdated != 0 {
				t.Fatalf("third run updated flags again: %+v", sum)
			}
		})
	}
}

func TestInterruptThenResume(t *testing.T) {
	var msgs []msg
	for i := range 50 {
		msgs = append(msgs, msg{"INBOX", "Message-ID: <" + strings.Repeat("x", i+1) + "@x>\r\n\r\nbody\r\n"})
	}
	src := memStore(t, msgs...)
	dst := memory.New()
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	dst.BeforePut = func(string, source.Message) error {
		if n.Add(1) == 10 {
			cancel()
		}
		return nil
	}
	ckptPath := filepath.Join(t.TempDir(), "ckpt")
	c, _ := state.Open(ckptPath, "test job")
	sum, err := plan.Run(ctx, src, dst, c, plan.Options{Workers: 2})
	c.Close()
	if !errors.Is(err, plan.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	if sum.Copied >= len(msgs) {
		t.Fatalf("interrupted run copied everything")
	}
	dst.BeforePut = nil
	sum = run(t, src, dst, ckptPath, plan.Options{})
	if dst.Count("INBOX") != len(msgs) || sum.Failed != 0 {
		t.Fatalf("after resume the destination holds %d of %d (%+v)", dst.Count("INBOX"), len(msgs), sum)
	}
}

func TestStopError(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"INBOX", "Message-ID: <2@x>\r\n\r\n2\r\n"}, msg{"INBOX", "Message-ID: <3@x>\r\n\r\n3\r\n"})
	dst := memory.New()
	dst.BeforePut = func(string, source.Message) error {
		if dst.Puts == 1 {
			return sink.ErrStop
		}
		return nil
	}
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	_, err := runErr(t, src, dst, ckpt, plan.Options{Workers: 1})
	if !errors.Is(err, sink.ErrStop) {
		t.Fatalf("err = %v, want ErrStop", err)
	}
	dst.BeforePut = nil
	run(t, src, dst, ckpt, plan.Options{})
	if dst.Count("INBOX") != 3 {
		t.Fatalf("destination holds %d, want 3", dst.Count("INBOX"))
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"Sub", "Message-ID: <2@x>\r\n\r\n22\r\n"})
	dst := memory.New()
	ckptPath := filepath.Join(t.TempDir(), "ckpt")
	c, err := state.OpenReadOnly(ckptPath, "test job")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := plan.Run(context.Background(), src, dst, c, plan.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 2 || sum.Bytes != int64(len("Message-ID: <1@x>\r\n\r\n1\r\n")+len("Message-ID: <2@x>\r\n\r\n22\r\n")) || !sum.DryRun {
		t.Fatalf("plan: %+v", sum)
	}
	if dst.Puts != 0 || dst.Count("Sub") != 0 {
		t.Fatal("a dry run wrote to the destination")
	}
	if _, err := os.Stat(ckptPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a dry run created the checkpoint")
	}
}

// Messages are copied with their dates.
func TestDatesCarried(t *testing.T) {
	src := memory.New()
	when := time.Date(2003, 4, 5, 6, 7, 8, 0, time.FixedZone("", -4*3600))
	src.Put(context.Background(), "INBOX", source.Message{Date: when, Size: 4}, strings.NewReader("a\r\n\r"))
	_, dst := maildirPair(t, srcmaildir.LayoutMaildirPP)
	run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	dst.List(context.Background(), "INBOX", func(m source.Message) error {
		if !m.Date.Equal(when) {
			t.Errorf("date %v, want %v", m.Date, when)
		}
		return nil
	})
}

func TestSpecialUseMapping(t *testing.T) {
	src := memStore(t, msg{"Sent Items", "Message-ID: <s@x>\r\n\r\ns\r\n"}, msg{"Junk-E-Mail", "Message-ID: <j@x>\r\n\r\nj\r\n"}, msg{"Other", "Message-ID: <o@x>\r\n\r\no\r\n"})
	src.Roles = map[string]string{"Sent Items": `\Sent`, "Junk-E-Mail": `\Junk`}
	dst := memory.New()
	dst.CreateFolder(context.Background(), "Sent")
	dst.Roles = map[string]string{"Sent": `\Sent`}
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if dst.Count("Sent") != 1 || dst.Count("Sent Items") != 0 || dst.Count("Junk-E-Mail") != 1 || dst.Count("Other") != 1 {
		t.Fatalf("Sent %d, Sent Items %d, Junk-E-Mail %d, Other %d", dst.Count("Sent"), dst.Count("Sent Items"), dst.Count("Junk-E-Mail"), dst.Count("Other"))
	}
	for _, f := range sum.Folders {
		if f.Name == "Sent Items" && (f.Destination != "Sent" || f.MappedBy != `special-use \Sent`) {
			t.Errorf("summary: %+v", f)
		}
		if f.Name == "Junk-E-Mail" && (f.Destination != "Junk-E-Mail" || f.MappedBy != "") {
			t.Errorf("summary: %+v", f)
		}
	}
	// A re-run finds everything done, mapped the same way.
	if s := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt2"), plan.Options{}); s.Copied != 0 || s.AlreadyPresent != 3 {
		t.Fatalf("re-run: %+v", s)
	}
}

// releasing is a destination that notes which folders it was told to
// let go of, and whether anything was written to one after that.
type releasing struct {
	*memory.Store
	mu       sync.Mutex
	released []string
	late     []string
}

func (r *releasing) Release(folder string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = append(r.released, folder)
}

func (r *releasing) Put(ctx context.Context, folder string, m source.Message, body io.Reader) (string, error) {
	r.mu.Lock()
	if slices.Contains(r.released, folder) {
		r.late = append(r.late, folder)
	}
	r.mu.Unlock()
	return r.Store.Put(ctx, folder, m, body)
}

var _ sink.Releaser = (*releasing)(nil)

// The destination is told when a folder's part of the run is over, once
// per destination folder, after the last message written there, two
// source folders mapped to one included.
func TestDestinationFolderReleased(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <a@x>\r\n\r\na\r\n"}, msg{"Old", "Message-ID: <b@x>\r\n\r\nb\r\n"},
		msg{"Archive", "Message-ID: <c@x>\r\n\r\nc\r\n"})
	dst := &releasing{Store: memory.New()}
	run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{
		Folders: plan.FolderRules{Map: map[string]string{"Old": "Archive"}}})
	slices.Sort(dst.released)
	if !slices.Equal(dst.released, []string{"Archive", "INBOX"}) || len(dst.late) > 0 {
		t.Fatalf("released %q, written after release: %q", dst.released, dst.late)
	}
	if dst.Count("Archive") != 2 || dst.Count("INBOX") != 1 {
		t.Fatalf("Archive %d, INBOX %d", dst.Count("Archive"), dst.Count("INBOX"))
	}
}

// flakyFolders fails its first Folders call as a dropped connection does.
type flakyFolders struct {
	*memory.Store
	failed *atomic.Bool
}

func (f flakyFolders) Folders(ctx context.Context) ([]source.Folder, error) {
	if f.failed.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("list folders: %w", io.ErrUnexpectedEOF)
	}
	return f.Store.Folders(ctx)
}

// A connection dropped while folders are listed is retried at either end:
// on the source it would end the run, on the destination it would quietly
// turn special-use mapping off and file Sent mail under another name.
func TestFolderListingRetried(t *testing.T) {
	src := memStore(t, msg{"Sent Items", "Message-ID: <s@x>\r\n\r\ns\r\n"})
	src.Roles = map[string]string{"Sent Items": `\Sent`}
	dst := memory.New()
	dst.CreateFolder(context.Background(), "Sent")
	dst.Roles = map[string]string{"Sent": `\Sent`}
	var sf, df atomic.Bool
	sum := run(t, flakyFolders{src, &sf}, flakyFolders{dst, &df}, filepath.Join(t.TempDir(), "ckpt"), plan.Options{RetryBase: time.Millisecond})
	if !sf.Load() || !df.Load() || sum.Retries != 2 {
		t.Fatalf("failures injected: source %v, destination %v; retries %d, want 2", sf.Load(), df.Load(), sum.Retries)
	}
	if dst.Count("Sent") != 1 || dst.Count("Sent Items") != 0 {
		t.Fatalf("Sent %d, Sent Items %d: the mapping did not survive the retry", dst.Count("Sent"), dst.Count("Sent Items"))
	}
}

// A transient failure is retried with backoff; when the failed attempt had
// in fact stored the message (its answer lost with the connection), the
// retry finds it at the destination instead of writing it twice.
func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		before    bool // fail before storing, else after (answer lost)
		err       error
		retries   int
		wantCount int
	}{
		{"connection lost before storing", true, io.ErrUnexpectedEOF, 1, 1},
		{"answer lost after storing", false, io.ErrUnexpectedEOF, 1, 1},
		{"server asks to back off", true, &source.TransientError{Err: errors.New("BAD throttled"), Delay: 10 * time.Millisecond}, 1, 1},
		{"permanent: no retry", true, sink.ErrRejected, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := memStore(t, msg{"INBOX", "Message-ID: <r@x>\r\n\r\nr\r\n"}, msg{"INBOX", "Subject: no id\r\n\r\nq\r\n"})
			dst := memory.New()
			failed := map[string]bool{}
			hook := func(m string) error {
				if !failed[m] {
					failed[m] = true
					return tt.err
				}
				return nil
			}
			if tt.before {
				dst.BeforePut = func(_ string, m source.Message) error { return hook(m.ID) }
			} else {
				n := 0
				dst.AfterPut = func(string, string) error { n++; return hook(fmt.Sprint(n)) }
			}
			sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Workers: 1, RetryBase: time.Millisecond})
			if sum.Retries != 2*tt.retries || dst.Count("INBOX") != 2*tt.wantCount {
				t.Fatalf("retries %d, destination holds %d; want %d and %d (%+v)", sum.Retries, dst.Count("INBOX"), 2*tt.retries, 2*tt.wantCount, sum.Errors)
			}
		})
	}
}

// vanishing deletes a folder between Folders and List, as another client
// might during a run.
type vanishing struct {
	*memory.Store
	gone string
}

func (v vanishing) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	if folder == v.gone {
		return fmt.Errorf("folder %q: %w", folder, source.ErrFolderNotFound)
	}
	return v.Store.List(ctx, folder, fn)
}

func TestFolderVanishesDuringRun(t *testing.T) {
	src := memStore(t, msg{"INBOX", "Message-ID: <1@x>\r\n\r\n1\r\n"}, msg{"Gone", "Message-ID: <2@x>\r\n\r\n2\r\n"}, msg{"Stays", "Message-ID: <3@x>\r\n\r\n3\r\n"})
	dst := memory.New()
	sum := run(t, vanishing{src, "Gone"}, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if sum.Copied != 2 || !sum.Incomplete() || len(sum.Errors) != 1 || sum.Errors[0].Folder != "Gone" || !strings.Contains(sum.Errors[0].Error, "not found") {
		t.Fatalf("%+v", sum)
	}
}

// Hostile content: a 1 MB header, a Message-ID after it, and a 0-byte
// message all copy and key correctly.
func TestHostileMessages(t *testing.T) {
	huge := "X-Junk: " + strings.Repeat("j", 1<<20) + "\r\nX-More:\r\n " + strings.Repeat("k ", 200000) + "\r\nMessage-ID: <after-junk@x>\r\n\r\nbody\r\n"
	src := memStore(t, msg{"INBOX", huge}, msg{"INBOX", ""}, msg{"INBOX", huge})
	_, dst := maildirPair(t, srcmaildir.LayoutMaildirPP)
	sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if sum.Copied != 2 || sum.DuplicatesSkipped != 1 || sum.Failed != 0 {
		t.Fatalf("%+v", sum)
	}
	sum2, err := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{Deep: true})
	if err != nil || !sum2.Complete() {
		t.Fatalf("verify: %+v, %v", sum2, err)
	}
}

// A move deletes at the source only what the destination holds byte for
// byte: by default it keys by content; with --dedup message-id a message
// that matched another with the same Message-ID is kept.
func TestMoveDeletesOnlyExactCopies(t *testing.T) {
	a := "Message-ID: <same@x>\r\n\r\nfirst body\r\n"
	b := "Message-ID: <same@x>\r\n\r\nsecond body, same ID\r\n"
	c := "Subject: no id\r\n\r\nc\r\n"
	for _, tt := range []struct {
		dedup             plan.Dedup
		copied, left, del int
	}{
		{"", 3, 0, 4},                  // content keys: a, b, c copied; the twin of a matches a byte for byte
		{plan.DedupMessageID, 3, 1, 3}, // a, b (same ID, other content) and c copied: deleted; a's twin matched a by ID only: kept
		{plan.DedupNone, 4, 0, 4},      // every message copied itself
	} {
		t.Run(string(tt.dedup), func(t *testing.T) {
			src := memStore(t, msg{"INBOX", a}, msg{"INBOX", b}, msg{"INBOX", c}, msg{"INBOX", a})
			dst := memory.New()
			sum := run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{Dedup: tt.dedup, DeleteAfterCopy: true})
			if sum.Copied != tt.copied || src.Count("INBOX") != tt.left || sum.Deleted != tt.del || sum.KeptAtSource != tt.left {
				t.Fatalf("copied %d, left %d, deleted %d, kept %d; want %d, %d, %d, %d", sum.Copied, src.Count("INBOX"), sum.Deleted, sum.KeptAtSource, tt.copied, tt.left, tt.del, tt.left)
			}
			for _, body := range src.Bodies("INBOX") {
				if tt.dedup == plan.DedupMessageID && string(body) != a && string(body) != b {
					t.Fatalf("kept %q, which was copied itself", body)
				}
			}
		})
	}
}

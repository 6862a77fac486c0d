// Package plan decides what to copy and copies it: it lists each source
// folder, skips what the checkpoint says is done, deduplicates the rest
// against the destination folder, and streams the remainder through a pool
// of workers into the sink, recording each message in the checkpoint once
// it is durable (see package state for the ordering rules).
package plan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// Options tune a run.
type Options struct {
	Dedup   Dedup
	Workers int // messages in flight at once; default 4
	// FolderParallelism is how many folders are copied at once (default
	// 1), sharing the workers.
	FolderParallelism int
	// DryRun plans without writing anything: no message, folder, flag or
	// checkpoint entry. The destination is only read.
	DryRun bool
	// DeleteAfterCopy deletes from the source every message that is at the
	// destination and recorded in the checkpoint, once the checkpoint is
	// flushed (move semantics). The source must implement source.Deleter.
	DeleteAfterCopy bool
	// Retries is how many more times a message is tried after a transient
	// failure (a dropped connection, a timeout, a server asking to back
	// off), with exponential backoff and jitter from RetryBase. Default 4;
	// negative: none.
	Retries   int
	RetryBase time.Duration
	// CrashGrace applies after a run that was killed: a server may still
	// commit an APPEND whose bytes it had received when its client died,
	// a moment after the death. Before it lists a destination folder, a
	// run whose predecessor died waits until CrashGrace has passed since
	// that run's last checkpoint write, so such a message is seen and not
	// copied again. Zero: no wait (a destination of our own, Maildir).
	CrashGrace time.Duration
	// MirrorDeletes deletes from the destination the copies of messages
	// gone from the source since an earlier run (see mirror.go for its
	// guards). The destination must implement source.Deleter.
	MirrorDeletes bool
	// MaxDeleteFraction is the largest share of a folder's recorded
	// messages a mirror deletes in one run (default 0.10); ForceDeletes
	// lifts it.
	MaxDeleteFraction float64
	ForceDeletes      bool
	// Folders chooses the folders and their destinations; Filter the
	// messages.
	Folders FolderRules
	Filter  Filter
	// Limits pace the run and cap the bytes of a day.
	Limits Limits
	// Progress, if set, is told what the run is doing (a progress bar).
	Progress Progress
	Log      *slog.Logger
}

// Progress receives a run's progress as it happens. Its methods are called
// from several goroutines and must not block.
type Progress interface {
	// Listing: the messages of a source folder are being listed.
	Listing(folder string)
	// Queued: a message of size bytes is to be copied.
	Queued(size int64)
	// Finished: a queued message is done (copied, failed or skipped).
	Finished(size int64)
}

type noProgress struct{}

func (noProgress) Listing(string) {}
func (noProgress) Queued(int64)   {}
func (noProgress) Finished(int64) {}

// Summary is the outcome of a run, also printed by --json.
type Summary struct {
	DryRun            bool `json:"dry_run,omitempty"`
	Copied            int  `json:"copied"`
	DuplicatesSkipped int  `json:"duplicates_skipped"`
	AlreadyPresent    int  `json:"already_present"`
	// SameMessageID counts messages that share a Message-ID with another
	// message of their folder but differ in content: each is a message of
	// its own, copied or matched at the destination.
	SameMessageID int `json:"same_message_id_other_content"`
	// Recopied counts the messages among Copied that the checkpoint
	// recorded as copied but the destination no longer held.
	Recopied     int `json:"recopied"`
	Failed       int `json:"failed"`
	FlagsUpdated int `json:"flags_updated"`
	Vanished     int `json:"vanished"`
	// Filtered counts messages the filters (size, date) left out.
	Filtered int `json:"filtered"`
	Deleted  int `json:"deleted,omitempty"`
	// MirrorDeleted counts copies deleted at the destination because their
	// source message is gone (mirror).
	MirrorDeleted int `json:"mirror_deleted,omitempty"`
	// BudgetReached: the run stopped at Limits.ByteBudget, cleanly; the
	// rest is for the next day's run.
	BudgetReached bool `json:"budget_reached,omitempty"`
	// KeptAtSource counts messages a move left at the source because they
	// matched the destination by Message-ID only, not byte for byte.
	KeptAtSource   int              `json:"kept_at_source,omitempty"`
	Retries        int              `json:"retries"`
	Bytes          int64            `json:"bytes"`
	Folders        []*FolderSummary `json:"folders"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Errors         []ErrorEntry     `json:"errors"`
	// Warnings name messages that were copied with less than they carry
	// (keywords a Maildir folder has no letter left for).
	Warnings []ErrorEntry `json:"warnings,omitempty"`
}

// FolderSummary is the outcome for one source folder.
type FolderSummary struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	// MappedBy says why Destination differs from Name ("special-use \Sent").
	MappedBy          string `json:"mapped_by,omitempty"`
	Messages          int    `json:"messages"`
	Copied            int    `json:"copied"`
	DuplicatesSkipped int    `json:"duplicates_skipped"`
	AlreadyPresent    int    `json:"already_present"`
	SameMessageID     int    `json:"same_message_id_other_content,omitempty"`
	Recopied          int    `json:"recopied,omitempty"`
	Failed            int    `json:"failed"`
	FlagsUpdated      int    `json:"flags_updated"`
	Filtered          int    `json:"filtered"`
	Bytes             int64  `json:"bytes"`
	Error             string `json:"error,omitempty"`
}

// ErrorEntry names one failure: a message (Message empty: the whole folder).
type ErrorEntry struct {
	Folder  string `json:"folder"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error"`
}

// Incomplete reports whether anything selected did not reach the
// destination.
func (s *Summary) Incomplete() bool {
	if s.Failed > 0 {
		return true
	}
	for _, f := range s.Folders {
		if f.Error != "" {
			return true
		}
	}
	return false
}

// ErrCannotDelete: --delete-after-copy with a source that cannot delete.
var ErrCannotDelete = errors.New("this source cannot delete messages (--delete-after-copy)")

// ErrNothingSelected: the source holds no mailbox, or a folder pattern
// matches none of its folders. From cron that would be a backup of
// nothing reported as a success, so it is an error, naming what is there.
var ErrNothingSelected = errors.New("nothing selected")

// ErrInterrupted is returned when the context was cancelled (Ctrl-C). What
// was done is in the checkpoint; the next run continues.
var ErrInterrupted = errors.New("interrupted")

// Run copies every folder of src to dst (a sink.Sink unless opt.DryRun).
// ckpt may be a read-only checkpoint in a dry run. The summary is returned
// even with an error.
func Run(ctx context.Context, src, dst source.Source, ckpt *state.Checkpoint, opt Options) (*Summary, error) {
	start := time.Now()
	e := &engine{doneSeen: map[string]bool{}, kept: map[string]bool{}, taken: map[string]bool{}, src: src, dst: dst, ckpt: ckpt, opt: opt, sum: &Summary{DryRun: opt.DryRun, Folders: []*FolderSummary{}, Errors: []ErrorEntry{}}, idx: map[string]*dstIndex{}}
	if e.opt.Workers <= 0 {
		e.opt.Workers = 4
	}
	if e.opt.FolderParallelism <= 0 {
		e.opt.FolderParallelism = 1
	}
	if e.opt.Log == nil {
		e.opt.Log = slog.New(slog.DiscardHandler)
	}
	if e.opt.Progress == nil {
		e.opt.Progress = noProgress{}
	}
	sel, err := newFolderSelector(opt.Folders)
	if err != nil {
		return e.sum, err
	}
	e.sel = sel
	e.lim = newLimiter(opt.Limits)
	e.budgetLeft = -1
	if opt.Limits.ByteBudget > 0 {
		used, err := ckpt.Usage(budgetDay())
		if err != nil {
			return e.sum, err
		}
		e.budgetLeft = max(0, opt.Limits.ByteBudget-used)
	}
	if e.opt.Dedup == "" {
		e.opt.Dedup = DedupMessageID
		if opt.DeleteAfterCopy {
			// A move deletes only what the destination holds byte for
			// byte: keys must be content hashes (see markDone).
			e.opt.Dedup = DedupContent
		}
	}
	if e.opt.Retries == 0 {
		e.opt.Retries = 4
	}
	if e.opt.RetryBase <= 0 {
		e.opt.RetryBase = 500 * time.Millisecond
	}
	if e.opt.MaxDeleteFraction <= 0 {
		e.opt.MaxDeleteFraction = 0.10
	}
	if opt.MirrorDeletes && !opt.DryRun {
		if _, ok := dst.(source.Deleter); !ok {
			return e.sum, ErrCannotMirror
		}
	}
	if !opt.DryRun {
		s, ok := dst.(sink.Sink)
		if !ok {
			return e.sum, errors.New("destination cannot be written to")
		}
		e.sink = s
		if w, ok := s.(sink.Warner); ok {
			w.OnWarning(e.warn)
		}
	}
	var deleter source.Deleter
	if opt.DeleteAfterCopy {
		d, ok := src.(source.Deleter)
		if !ok {
			return e.sum, ErrCannotDelete
		}
		deleter = d
	}
	if unclean, last := ckpt.PreviousRun(); unclean && opt.CrashGrace > 0 && !opt.DryRun {
		e.graceUntil = last.Add(opt.CrashGrace)
	}
	err = e.run(ctx)
	if errors.Is(err, ErrBudget) {
		e.sum.BudgetReached = true
		e.opt.Log.Warn("stopped: " + ErrBudget.Error())
		err = nil
	}
	if opt.Limits.ByteBudget > 0 && !opt.DryRun && e.sum.Bytes > 0 {
		if uerr := ckpt.AddUsage(budgetDay(), e.sum.Bytes); uerr != nil && err == nil {
			err = uerr
		}
	}
	if ckpt != nil && !opt.DryRun {
		if ferr := ckpt.Flush(); ferr != nil && err == nil {
			err = ferr
		}
	}
	// Move: delete only what the flushed checkpoint records, and only after
	// a run that was not cut short.
	if deleter == nil || opt.DryRun {
		e.sum.KeptAtSource = 0 // not a move: nothing is kept back
	} else if e.sum.KeptAtSource > 0 {
		e.opt.Log.Warn("messages kept at the source: they match the destination by Message-ID only, not byte for byte (a move with --dedup content deletes them)", "count", e.sum.KeptAtSource)
	}
	if deleter != nil && err == nil && !opt.DryRun && len(e.doneMsgs) > 0 {
		if derr := deleter.Delete(ctx, e.doneMsgs); derr != nil {
			err = fmt.Errorf("delete copied messages from the source: %w", derr)
		} else {
			e.sum.Deleted = len(e.doneMsgs)
		}
	}
	e.sum.ElapsedSeconds = time.Since(start).Seconds()
	return e.sum, err
}

type engine struct {
	sel *folderSelector
	lim *limiter
	// budgetLeft is what the day's byte budget still allows (-1: none),
	// under mu.
	budgetLeft int64
	// holdUntil: no new message is started before it (a server's backoff
	// request), under mu.
	holdUntil time.Time
	src       source.Source
	dst       source.Source
	sink      sink.Sink
	ckpt      *state.Checkpoint
	opt       Options

	mu       sync.Mutex // guards sum, idx contents, doneMsgs
	sum      *Summary
	idx      map[string]*dstIndex
	doneMsgs []source.Message // recorded in the checkpoint: may be deleted at the source
	doneSeen map[string]bool
	// graceUntil: no destination listing before then (Options.CrashGrace).
	graceUntil time.Time
	// kept: by destination folder, whether its records are believed
	// without a listing (dstcheck.go); taken: destination messages this
	// run accounts for ("folder\x00id"), for DedupNone.
	kept, taken map[string]bool
	noneMu      sync.Mutex
}

// dstIndex is what one destination folder holds, by dedup key.
type dstIndex struct {
	present  map[string]presentEntry
	inflight map[string]*task
	flags    map[string][]string // destination ID -> flags, from the listing
	all      map[string][]string // key -> every destination ID with it (sameid.go)
	listed   []source.Message    // the listing, once isListed
	isListed bool
}

type presentEntry struct {
	id      string
	thisRun bool
}

// task is one message to copy, with the duplicates that wait on it.
type task struct {
	m         source.Message
	fs        *FolderSummary
	dstFolder string
	key       string
	dstKeys   []string
	followers []source.Message
	// recopy: the checkpoint recorded this message as copied, but the
	// destination lost it.
	recopy bool
}

func (e *engine) run(ctx context.Context) error {
	var all []source.Folder
	err := e.retry(ctx, "list source folders", func() (err error) {
		all, err = e.src.Folders(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("list source folders: %w", err)
	}
	if len(all) == 0 {
		return fmt.Errorf("%w: the source holds no mailbox", ErrNothingSelected)
	}
	var folders []source.Folder
	for _, f := range all {
		if e.sel.selected(f) {
			folders = append(folders, f)
		} else {
			e.opt.Log.Debug("folder not selected", "folder", f.Name)
		}
	}
	if p := e.sel.unmatched(all); p != "" {
		return fmt.Errorf("%w: the folder pattern %q matches none of the source's folders: %s", ErrNothingSelected, p, folderList(all))
	}
	slices.SortFunc(folders, func(a, b source.Folder) int {
		// INBOX first, then by name: a stable, readable order.
		return cmp.Or(-cmp.Compare(boolInt(a.Name == "INBOX"), boolInt(b.Name == "INBOX")), strings.Compare(a.Name, b.Name))
	})

	mapping, err := e.mapFolders(ctx, folders)
	if err != nil {
		return err
	}

	// Folders are copied FolderParallelism at a time, each with its share
	// of the workers: a server serialises writes into one mailbox, so
	// speed into IMAP comes from several mailboxes at once. Folders with
	// the same destination stay in one group, in order, so a destination
	// folder is only ever listed and written by one group. Each folder has
	// its own workers, so a pooled source connection keeps serving the one
	// mailbox it has selected instead of switching back and forth.
	var groups [][]source.Folder
	groupOf := map[string]int{}
	for _, f := range folders {
		to := mapping[f.Name].name
		if g, ok := groupOf[to]; ok {
			groups[g] = append(groups[g], f)
			continue
		}
		groupOf[to] = len(groups)
		groups = append(groups, []source.Folder{f})
	}
	par := max(1, min(e.opt.FolderParallelism, len(groups)))
	workers := max(1, e.opt.Workers/par)

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		planErr   error
		errOnce   sync.Once
		next      = make(chan []source.Folder)
		planners  sync.WaitGroup
		budgetHit atomic.Bool // no new folders once the budget is used up
	)
	for range par {
		planners.Add(1)
		go func() {
			defer planners.Done()
			for group := range next {
				for _, f := range group {
					if runCtx.Err() != nil || budgetHit.Load() {
						break // and keep taking groups, so the feeder never blocks
					}
					if err := e.copyFolder(runCtx, stop, f, mapping[f.Name], workers); errors.Is(err, ErrBudget) {
						errOnce.Do(func() { planErr = err })
						budgetHit.Store(true) // copies in flight finish
					} else if err != nil {
						errOnce.Do(func() { planErr = err })
						stop(nil)
					}
				}
			}
		}()
	}
feed:
	for _, g := range groups {
		if budgetHit.Load() {
			break
		}
		select {
		case next <- g:
		case <-runCtx.Done():
			break feed
		}
	}
	close(next)
	planners.Wait()
	// The summary lists folders in the order they were found, whatever
	// order the groups finished in.
	order := map[string]int{}
	for i, f := range folders {
		order[f.Name] = i
	}
	slices.SortStableFunc(e.sum.Folders, func(a, b *FolderSummary) int { return cmp.Compare(order[a.Name], order[b.Name]) })

	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // a sink.ErrStop from a worker
	}
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	return planErr
}

// takeBudget reserves size bytes of the day's budget; false when they do
// not fit (a message larger than a whole day's budget is never copied
// and says so through ErrBudget every day: raise the budget).
func (e *engine) takeBudget(size int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.budgetLeft < 0 {
		return true
	}
	if size > e.budgetLeft {
		return false
	}
	e.budgetLeft -= size
	return true
}

// budgetDay names the UTC day a byte budget counts in.
func budgetDay() string { return time.Now().UTC().Format(time.DateOnly) }

// copyFolder plans one folder and copies what it must with its own
// workers, returning when they are done.
func (e *engine) copyFolder(ctx context.Context, stop context.CancelCauseFunc, f source.Folder, to folderMap, workers int) error {
	token, skipped, err := e.unchanged(ctx, f, to)
	if skipped || err != nil {
		return err
	}
	tasks := make(chan *task, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				e.copy(ctx, stop, t)
			}
		}()
	}
	err = e.planFolder(ctx, f, to, tasks)
	close(tasks)
	wg.Wait()
	// Whatever ended the folder, every record names a copy that is there:
	// the state may vouch for them. A run stopped by the destination (full)
	// still asks for it; one interrupted by the user does not wait.
	sctx := ctx
	if errors.Is(context.Cause(ctx), sink.ErrStop) {
		sctx = context.WithoutCancel(ctx)
	}
	if serr := e.saveDstState(sctx, to.name); err == nil {
		err = serr
	}
	if err == nil && token != "" && ctx.Err() == nil {
		err = e.saveUnchanged(f, token)
	}
	return err
}

// unchanged skips a folder that has not changed since a run that left it
// complete: the source's state token (source.Stater, taken before the
// listing) and the run's settings that decide what is copied where must
// be those the checkpoint recorded then. It returns the token to record
// if this run completes the folder. A move lists always: a deletion that
// failed last time must be tried again.
func (e *engine) unchanged(ctx context.Context, f source.Folder, to folderMap) (token string, skipped bool, err error) {
	st, ok := e.src.(source.Stater)
	if !ok || e.opt.DeleteAfterCopy {
		return "", false, nil
	}
	tok, err := st.State(ctx, f.Name)
	if err != nil || tok == "" {
		return "", false, nil // not fatal: list as usual
	}
	token = fmt.Sprintf("%s\x00to=%s dedup=%s filter=%+v mirror=%v", tok, to.name, e.opt.Dedup, e.opt.Filter, e.opt.MirrorDeletes)
	saved, err := e.ckpt.FolderState(f.Name)
	if err != nil {
		return "", false, fmt.Errorf("read checkpoint: %w", err)
	}
	prefix, counts, found := strings.Cut(string(saved), "\x00counts=")
	var messages, filtered int
	if !found || prefix != token || !e.dstKept(ctx, to.name) {
		return token, false, nil
	}
	if _, err := fmt.Sscanf(counts, "%d %d", &messages, &filtered); err != nil {
		return token, false, nil
	}
	fs := &FolderSummary{Name: f.Name, Destination: to.name, MappedBy: to.why, Messages: messages, AlreadyPresent: messages - filtered, Filtered: filtered}
	e.mu.Lock()
	e.sum.Folders = append(e.sum.Folders, fs)
	e.sum.AlreadyPresent += fs.AlreadyPresent
	e.sum.Filtered += filtered
	e.mu.Unlock()
	e.opt.Log.Debug("folder unchanged since the last complete run; not listed", "folder", f.Name, "state", tok)
	return "", true, nil
}

// saveUnchanged records that the folder is complete as of token, if the
// run left nothing of it undone. SetFolderState flushes the records first,
// so the state never runs ahead of them.
func (e *engine) saveUnchanged(f source.Folder, token string) error {
	if e.opt.DryRun {
		return nil
	}
	e.mu.Lock()
	var fs *FolderSummary
	for _, s := range e.sum.Folders {
		if s.Name == f.Name {
			fs = s
		}
	}
	e.mu.Unlock()
	if fs == nil || fs.Failed > 0 || fs.Error != "" || e.sum.BudgetReached {
		return nil
	}
	return e.ckpt.SetFolderState(f.Name, []byte(fmt.Sprintf("%s\x00counts=%d %d", token, fs.Messages, fs.Filtered)))
}

type folderMap struct{ name, why string }

// mapFolders picks each source folder's destination: an explicit map
// entry; else, with a prefix, its name under the prefix; else the
// destination folder with the same special-use role (RFC 6154, or the
// role its name has in a common language, for servers without
// SPECIAL-USE), so "Sent Items" and "Gesendete Elemente" land in "Sent";
// else its own name.
func (e *engine) mapFolders(ctx context.Context, folders []source.Folder) (map[string]folderMap, error) {
	out := map[string]folderMap{}
	rules := e.opt.Folders
	byRole := map[string]string{}
	guessed := map[string]string{}
	var dst []source.Folder
	err := e.retry(ctx, "list destination folders", func() (err error) {
		dst, err = e.dst.Folders(ctx)
		return err
	})
	if err == nil {
		for _, f := range dst {
			role, byName := roleOf(f)
			switch {
			case role == "":
			case !byName && byRole[role] == "":
				byRole[role] = f.Name
			case byName && guessed[role] == "":
				guessed[role] = f.Name
			}
		}
		for role, name := range guessed {
			if byRole[role] == "" {
				byRole[role] = name
			}
		}
	} else if ctx.Err() != nil {
		return nil, ctx.Err()
	} else {
		// Not fatal: without the list, folders keep their names.
		e.opt.Log.Warn("cannot list destination folders; special-use mapping is off", "error", err)
	}
	for _, f := range folders {
		m := folderMap{name: f.Name}
		role, byName := roleOf(f)
		switch to, mapped := rules.Map[f.Name]; {
		case mapped:
			m = folderMap{name: to, why: "folders.map"}
		case rules.Prefix != "":
			m = folderMap{name: strings.TrimSuffix(rules.Prefix, "/") + "/" + f.Name, why: "folders.prefix"}
		case byRole[role] != "" && byRole[role] != f.Name && f.Name != "INBOX":
			m = folderMap{name: byRole[role], why: "special-use " + role}
			if byName {
				m.why += " (by name)"
			}
		}
		out[f.Name] = m
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// planFolder lists one source folder and sends what must be copied to tasks.
// It returns an error only for what ends the whole run; a folder that
// cannot be read is recorded in the summary and skipped.
func (e *engine) planFolder(ctx context.Context, f source.Folder, to folderMap, tasks chan<- *task) error {
	e.opt.Progress.Listing(f.Name)
	fs := &FolderSummary{Name: f.Name, Destination: to.name, MappedBy: to.why}
	e.mu.Lock()
	e.sum.Folders = append(e.sum.Folders, fs)
	e.mu.Unlock()
	folderErr := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.mu.Lock()
		fs.Error = err.Error()
		e.sum.Errors = append(e.sum.Errors, ErrorEntry{Folder: f.Name, Error: err.Error()})
		e.mu.Unlock()
		e.opt.Log.Error("folder skipped", "folder", f.Name, "error", err)
		return nil
	}

	var msgs []source.Message
	if err := e.retry(ctx, "list "+f.Name, func() error {
		msgs = msgs[:0]
		return e.src.List(ctx, f.Name, func(m source.Message) error {
			msgs = append(msgs, m)
			return nil
		})
	}); err != nil {
		return folderErr(fmt.Errorf("list: %w", err))
	}
	fs.Messages = len(msgs)
	if e.opt.MirrorDeletes {
		if err := e.mirror(ctx, fs, msgs); err != nil {
			return err
		}
	}
	if e.opt.Filter.Active() {
		kept := msgs[:0]
		for _, m := range msgs {
			if skip, _ := e.opt.Filter.skips(m); skip {
				e.filtered(fs, m)
				continue
			}
			kept = append(kept, m)
		}
		msgs = kept
	}
	if e.sink != nil {
		if err := e.retry(ctx, "create folder "+fs.Destination, func() error {
			return e.sink.CreateFolder(ctx, fs.Destination)
		}); err != nil {
			return folderErr(fmt.Errorf("create destination folder %q: %w", fs.Destination, err))
		}
		// Subscriptions carry over: a folder subscribed at the source (or
		// from a store without subscriptions) is subscribed here.
		if sub, ok := e.sink.(sink.Subscriber); ok && !f.Unsubscribed {
			if err := sub.Subscribe(ctx, fs.Destination); err != nil {
				e.opt.Log.Warn("folder not subscribed", "folder", fs.Destination, "error", err)
			}
		}
	}

	// Messages the checkpoint knows need no key and no destination listing
	// (this is what makes a re-run fast), as long as the destination folder
	// is provably the one that received them, with nothing removed since.
	// Otherwise each record is checked against a listing, and a copy the
	// destination lost is made again.
	var idx *dstIndex
	var err error
	kept := e.dstKept(ctx, fs.Destination)
	if !kept {
		if idx, err = e.index(ctx, fs.Destination); err != nil {
			return folderErr(fmt.Errorf("list destination folder %q: %w", fs.Destination, err))
		}
	}
	maybe, err := e.ckpt.Intents(f.Name) // DedupNone: copies that may have landed
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	unkeyed := map[string]bool{}
	recopy := map[string]bool{}
	same := newSameID()
	var pending []source.Message
	var flagUpdates []flagUpdate
	rf, err := e.ckpt.ReadFolder(f.Name)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	for _, m := range msgs {
		rec, ok, err := rf.Get(m.ID)
		if err != nil {
			rf.Close()
			return fmt.Errorf("read checkpoint: %w", err)
		}
		if !ok || rec.DstFolder != fs.Destination {
			if maybe[m.ID] == fs.Destination {
				unkeyed[m.ID] = true
			}
			pending = append(pending, m)
			continue
		}
		if !kept && !idx.holds(rec.DstID) {
			if rec.DstID == "" {
				// No ID to look for (IMAP without UIDPLUS): found again by
				// its key, or by content without one.
				unkeyed[m.ID] = true
			} else {
				recopy[m.ID] = true
			}
			pending = append(pending, m)
			continue
		}
		fs.AlreadyPresent++
		same.recorded(m, rec)
		e.markDone(m, rec)
		if !source.SameFlags(rec.Flags, e.syncedFlags(m.Flags)) && rec.DstID != "" {
			flagUpdates = append(flagUpdates, flagUpdate{m: m, rec: rec})
		}
	}
	rf.Close()
	e.mu.Lock()
	e.sum.AlreadyPresent += fs.AlreadyPresent
	e.mu.Unlock()
	for _, u := range flagUpdates {
		if err := e.updateFlags(ctx, fs, u.m, u.rec); err != nil {
			return err
		}
	}
	if len(recopy) > 0 {
		e.opt.Log.Warn("the destination lost messages the checkpoint recorded as copied; copying them again", "folder", fs.Name, "destination", fs.Destination, "count", len(recopy))
	}
	if e.opt.Dedup == DedupNone {
		if pending, err = e.recoverUnkeyed(ctx, fs, pending, unkeyed); err != nil {
			return folderErr(err)
		}
	}
	if len(pending) == 0 {
		return nil
	}

	switch {
	case idx != nil:
	case e.opt.Dedup != DedupNone:
		if idx, err = e.index(ctx, fs.Destination); err != nil {
			return folderErr(fmt.Errorf("list destination folder %q: %w", fs.Destination, err))
		}
	default:
		idx = e.emptyIndex(fs.Destination)
	}
	// A source that reads faster in bulk is told what comes, a batch at a
	// time, before the batch goes to the workers.
	pf, _ := e.src.(source.Prefetcher)
	var batch []*task
	send := func(ts ...*task) error {
		for i, t := range ts {
			select {
			case tasks <- t:
			case <-ctx.Done():
				for _, t := range ts[i:] {
					e.opt.Progress.Finished(max(t.m.Size, 0))
				}
				return ctx.Err()
			}
		}
		return nil
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		msgs := make([]source.Message, len(batch))
		for i, t := range batch {
			msgs[i] = t.m
		}
		pf.Prefetch(ctx, f.Name, msgs)
		err := send(batch...)
		batch = batch[:0]
		return err
	}
	for _, m := range pending {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d, ok := e.src.(source.Describer); ok {
			if err := d.Describe(ctx, &m); errors.Is(err, source.ErrMessageNotFound) {
				e.vanished(fs, m, err)
				continue
			} else if err != nil {
				e.fail(fs, m, fmt.Errorf("read header: %w", err))
				continue
			}
			if skip, _ := e.opt.Filter.skips(m); skip {
				e.filtered(fs, m)
				continue
			}
		}
		key, keys, err := e.sourceKey(ctx, &m)
		if errors.Is(err, source.ErrMessageNotFound) {
			e.vanished(fs, m, err)
			continue
		}
		if err != nil {
			e.fail(fs, m, fmt.Errorf("read header: %w", err))
			continue
		}
		if key, err = e.refine(ctx, same, fs, idx, m, key); err != nil {
			e.fail(fs, m, fmt.Errorf("read: %w", err))
			continue
		}
		if !e.needsCopy(ctx, fs, idx, m, key) {
			continue
		}
		t := &task{m: m, fs: fs, dstFolder: fs.Destination, key: key, dstKeys: keys, recopy: recopy[m.ID]}
		e.mu.Lock()
		idx.inflight[key] = t
		e.mu.Unlock()
		if e.opt.DryRun {
			e.done(t, "", max(m.Size, 0))
			continue
		}
		if !e.takeBudget(max(m.Size, 0)) {
			e.mu.Lock()
			delete(idx.inflight, key)
			e.mu.Unlock()
			if err := flush(); err != nil {
				return err
			}
			return ErrBudget
		}
		e.opt.Progress.Queued(max(m.Size, 0))
		if pf == nil {
			if err := send(t); err != nil {
				return err
			}
			continue
		}
		if batch = append(batch, t); len(batch) >= prefetchBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// prefetchBatch is how many copies a source.Prefetcher hears of at once:
// enough that it reads in long runs, few enough that copying starts at
// once.
const prefetchBatch = 512

// syncedFlags are the flags carried to the destination on a re-run. In a
// move, \Deleted is the move's own mark (a run killed between flagging and
// expunging leaves it): it must not travel to the copies.
func (e *engine) syncedFlags(flags []string) []string {
	if !e.opt.DeleteAfterCopy || !slices.Contains(flags, source.FlagDeleted) {
		return flags
	}
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == source.FlagDeleted })
}

type flagUpdate struct {
	m   source.Message
	rec state.Record
}

// needsCopy decides what to do with a pending source message given the
// destination index: true when it must be copied; otherwise it has been
// accounted for (already there, or waiting on a copy of the same key).
func (e *engine) needsCopy(ctx context.Context, fs *FolderSummary, idx *dstIndex, m source.Message, key string) bool {
	e.mu.Lock()
	if t, ok := idx.inflight[key]; ok {
		// Same key as a message being copied now: it waits on that copy,
		// and is copied itself if that one fails.
		t.followers = append(t.followers, m)
		e.mu.Unlock()
		return false
	}
	p, ok := idx.present[key]
	var dstFlags []string
	if ok {
		dstFlags = idx.flags[p.id]
		if p.thisRun {
			fs.DuplicatesSkipped++
			e.sum.DuplicatesSkipped++
		} else {
			fs.AlreadyPresent++
			e.sum.AlreadyPresent++
		}
	}
	e.mu.Unlock()
	if !ok {
		return true
	}
	e.opt.Log.Debug("already at destination", "folder", fs.Name, "message", describe(m), "key", key)
	if e.opt.DryRun {
		return false
	}
	rec := state.Record{DstFolder: fs.Destination, DstID: p.id, Key: key, Flags: m.Flags}
	if !p.thisRun && !source.SameFlags(dstFlags, m.Flags) {
		// Found by listing: bring its flags in line with the source, as a
		// re-run would for a message we copied.
		rec.Flags = dstFlags
		e.updateFlags(ctx, fs, m, rec)
		return false
	}
	e.record(m, rec, nil)
	return false
}

func (e *engine) updateFlags(ctx context.Context, fs *FolderSummary, m source.Message, rec state.Record) error {
	fsetter, ok := e.dst.(sink.FlagSetter)
	if !ok && !e.opt.DryRun {
		return nil
	}
	e.mu.Lock()
	fs.FlagsUpdated++
	e.sum.FlagsUpdated++
	e.mu.Unlock()
	if e.opt.DryRun {
		return nil
	}
	flags := e.syncedFlags(m.Flags)
	if err := e.retry(ctx, "set flags in "+rec.DstFolder, func() error {
		return fsetter.SetFlags(ctx, rec.DstFolder, rec.DstID, flags)
	}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, source.ErrMessageNotFound) {
			// The copy was removed at the destination: keep the old
			// record, so we do not copy it back behind the user's back.
			e.opt.Log.Warn("destination copy gone; flags not updated", "folder", fs.Name, "message", describe(m))
			return nil
		}
		e.fail(fs, m, fmt.Errorf("set flags: %w", err))
		return nil
	}
	rec.Flags = flags
	e.record(m, rec, nil)
	return nil
}

// sourceKey returns the dedup key of a source message and the keys to
// record for its copy.
func (e *engine) sourceKey(ctx context.Context, m *source.Message) (key string, keys []string, err error) {
	switch e.opt.Dedup {
	case DedupNone:
		return sourceKeyNone(*m), nil, nil
	case DedupContent:
		c, err := e.contentKey(ctx, e.src, *m)
		if err != nil {
			return "", nil, err
		}
		keys = []string{c}
		if m.MessageIDKnown {
			keys = append(keys, msgIDPrefix+NormalizeMessageID(m.MessageID))
		}
		return c, keys, nil
	}
	k, err := e.messageIDKeys(ctx, e.src, m)
	if err != nil {
		return "", nil, err
	}
	return k[0], k, nil
}

// sourceKeyNone is a message's key with DedupNone: itself.
func sourceKeyNone(m source.Message) string { return "s:" + m.Folder + "\x00" + m.ID }

// messageIDKeys returns, for DedupMessageID, the keys of a message: its
// Message-ID key, or the marker "m:" (it has none) followed by its content
// key.
//
// A Message-ID read from the content is kept in m, so errors and logs can
// name the message by it.
func (e *engine) messageIDKeys(ctx context.Context, s source.Source, m *source.Message) ([]string, error) {
	raw, found := m.MessageID, m.MessageIDKnown
	if !m.MessageIDKnown {
		r, err := s.Open(ctx, *m)
		if err != nil {
			return nil, err
		}
		raw, found, err = header.MessageID(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		m.MessageID, m.MessageIDKnown = raw, true
	}
	if k := MessageIDKey(raw); found && k != "" {
		return []string{k}, nil
	}
	c, err := e.contentKey(ctx, s, *m)
	if err != nil {
		return nil, err
	}
	return []string{c, msgIDPrefix}, nil
}

func (e *engine) contentKey(ctx context.Context, s source.Source, m source.Message) (string, error) {
	r, err := s.Open(ctx, m)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return ContentKey(r)
}

func (e *engine) emptyIndex(dstFolder string) *dstIndex {
	e.mu.Lock()
	defer e.mu.Unlock()
	idx := e.idx[dstFolder]
	if idx == nil {
		idx = &dstIndex{present: map[string]presentEntry{}, inflight: map[string]*task{}, flags: map[string][]string{}, all: map[string][]string{}}
		e.idx[dstFolder] = idx
	}
	return idx
}

// index lists dstFolder once per run and keys what it holds, reading from
// the destination only messages the checkpoint has no keys for.
func (e *engine) index(ctx context.Context, dstFolder string) (*dstIndex, error) {
	idx := e.emptyIndex(dstFolder)
	e.mu.Lock()
	listed := idx.isListed
	e.mu.Unlock()
	if listed {
		return idx, nil
	}
	if wait := time.Until(e.graceUntil); wait > 0 {
		e.opt.Log.Warn("the previous run was killed; waiting for writes it left in flight to land", "wait", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	known, err := e.ckpt.DstKeys(dstFolder)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var msgs []source.Message
	err = e.retry(ctx, "list destination "+dstFolder, func() error {
		msgs = msgs[:0]
		return e.dst.List(ctx, dstFolder, func(m source.Message) error {
			msgs = append(msgs, m)
			return nil
		})
	})
	if err != nil && !errors.Is(err, source.ErrFolderNotFound) { // not found: nothing there yet
		return nil, err
	}
	e.mu.Lock()
	idx.isListed = true
	idx.listed = msgs
	for _, m := range msgs {
		idx.flags[m.ID] = m.Flags
	}
	e.mu.Unlock()
	for _, m := range msgs {
		if e.opt.Dedup == DedupNone {
			continue // no keys to match on
		}
		keys := known[m.ID]
		if !e.hasNeededKeys(keys) {
			keys, err = e.destinationKeys(ctx, m)
			if errors.Is(err, source.ErrMessageNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read %q: %w", m.ID, err)
			}
			if !e.opt.DryRun {
				e.ckpt.AddDstKeys(dstFolder, m.ID, keys)
			}
		}
		e.mu.Lock()
		for _, k := range keys {
			if k != msgIDPrefix {
				if _, dup := idx.present[k]; !dup {
					idx.present[k] = presentEntry{id: m.ID}
				}
				idx.all[k] = append(idx.all[k], m.ID)
			}
		}
		idx.flags[m.ID] = m.Flags
		e.mu.Unlock()
	}
	return idx, nil
}

// holds reports whether the listing showed the destination message id.
func (idx *dstIndex) holds(id string) bool {
	_, ok := idx.flags[id]
	return ok && id != ""
}

// hasNeededKeys reports whether keys let the current dedup mode match a
// destination message without reading it.
func (e *engine) hasNeededKeys(keys []string) bool {
	var m, mNone, c bool
	for _, k := range keys {
		switch {
		case k == msgIDPrefix:
			mNone = true
		case strings.HasPrefix(k, msgIDPrefix):
			m = true
		case strings.HasPrefix(k, contentPrefix):
			c = true
		}
	}
	if e.opt.Dedup == DedupContent {
		return c
	}
	return m || (mNone && c)
}

func (e *engine) destinationKeys(ctx context.Context, m source.Message) ([]string, error) {
	if e.opt.Dedup == DedupContent {
		c, err := e.contentKey(ctx, e.dst, m)
		if err != nil {
			return nil, err
		}
		return []string{c}, nil
	}
	return e.messageIDKeys(ctx, e.dst, &m)
}

// copy runs in a worker: it streams one message from source to sink and
// records it.
func (e *engine) copy(ctx context.Context, stop context.CancelCauseFunc, t *task) {
	defer e.opt.Progress.Finished(max(t.m.Size, 0))
	if ctx.Err() != nil {
		return
	}
	id, n, err := e.put(ctx, t)
	for attempt := 1; err != nil && attempt <= e.opt.Retries && transient(err) && ctx.Err() == nil; attempt++ {
		e.mu.Lock()
		e.sum.Retries++
		e.mu.Unlock()
		delay := backoff(e.opt.RetryBase, attempt, err)
		e.opt.Log.Warn("retrying", "folder", t.fs.Name, "message", describe(t.m), "attempt", attempt, "after", delay.Round(time.Millisecond), "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		// The failed attempt may have stored the message and lost only the
		// server's answer with the connection: look before writing again,
		// or a retry would make a duplicate.
		if fid, found, rerr := e.recheck(ctx, t); rerr == nil && found {
			id, n, err = fid, max(t.m.Size, 0), nil
			break
		} else if rerr != nil {
			err = fmt.Errorf("%w (and checking the destination: %v)", err, rerr)
			continue
		}
		id, n, err = e.put(ctx, t)
	}
	switch {
	case err == nil:
		e.done(t, id, n)
		return
	case ctx.Err() != nil:
		return // interrupted: the message is not at the destination, nor recorded
	case errors.Is(err, source.ErrMessageNotFound):
		e.vanished(t.fs, t.m, err)
	case errors.Is(err, sink.ErrStop):
		e.fail(t.fs, t.m, err)
		stop(fmt.Errorf("folder %q: %w", t.dstFolder, err))
		return
	default:
		e.fail(t.fs, t.m, err)
	}
	// The copy failed: the first duplicate waiting on it gets its own
	// chance, so no message is lost to another's failure.
	e.mu.Lock()
	idx := e.idx[t.dstFolder]
	delete(idx.inflight, t.key)
	var next *task
	if len(t.followers) > 0 {
		next = &task{m: t.followers[0], fs: t.fs, dstFolder: t.dstFolder, key: t.key, dstKeys: t.dstKeys, followers: t.followers[1:]}
		idx.inflight[t.key] = next
	}
	e.mu.Unlock()
	if next != nil {
		e.copy(ctx, stop, next)
	}
}

// retry runs fn until it succeeds, fails for good, or runs out of
// attempts, with the same backoff as copies.
func (e *engine) retry(ctx context.Context, what string, fn func() error) error {
	err := fn()
	for attempt := 1; err != nil && attempt <= e.opt.Retries && transient(err) && ctx.Err() == nil; attempt++ {
		e.mu.Lock()
		e.sum.Retries++
		e.mu.Unlock()
		delay := backoff(e.opt.RetryBase, attempt, err)
		e.holdAll(err)
		e.opt.Log.Warn("retrying", "what", what, "attempt", attempt, "after", delay.Round(time.Millisecond), "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		err = fn()
	}
	return err
}

// transient reports whether err is worth another try: a broken connection
// or timeout, or what an adapter marked as source.TransientError. What a
// retry cannot change (a message refused or malformed, a full destination,
// a message gone) is not.
func transient(err error) bool {
	var te *source.TransientError
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.Is(err, sink.ErrRejected), errors.Is(err, sink.ErrStop), errors.Is(err, source.ErrSizeMismatch),
		errors.Is(err, source.ErrMessageNotFound), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &te):
		return true
	case errors.As(err, &errno):
		// Every errno satisfies net.Error; only these can pass by
		// themselves (a missing file, a name too long, a full disk
		// cannot).
		return slices.Contains(retryableErrnos, errno)
	case errors.As(err, &ne):
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

var retryableErrnos = []syscall.Errno{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.ETIMEDOUT, syscall.EAGAIN, syscall.EINTR, syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN}

// backoff is base·2^(attempt-1), capped at a minute, with ±25 % jitter so
// parallel workers do not retry in step; a delay the server asked for
// comes first.
func backoff(base time.Duration, attempt int, err error) time.Duration {
	var te *source.TransientError
	if errors.As(err, &te) && te.Delay > 0 {
		return te.Delay
	}
	d := min(base<<(attempt-1), time.Minute)
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// holdAll: a server that names a backoff time (Microsoft 365's
// "Suggested Backoff Time") throttles the account, not one message, so
// every worker holds off until then, not only the one that was told.
func (e *engine) holdAll(err error) {
	var te *source.TransientError
	if !errors.As(err, &te) || te.Delay <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if until := time.Now().Add(te.Delay); until.After(e.holdUntil) {
		e.holdUntil = until
	}
}

// waitHold waits out a backoff the server asked of the whole account.
func (e *engine) waitHold(ctx context.Context) error {
	e.mu.Lock()
	wait := time.Until(e.holdUntil)
	e.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recheck lists t's destination folder again and reports whether a message
// with t's key has appeared. With DedupNone the key is the content hash,
// matched against the new messages that no record names and no copy of
// this run claimed (claim).
func (e *engine) recheck(ctx context.Context, t *task) (string, bool, error) {
	want := t.key
	var recorded map[string]bool
	if e.opt.Dedup == DedupNone {
		e.noneMu.Lock() // one recheck at a time: each claims what it finds
		defer e.noneMu.Unlock()
		var err error
		if want, err = e.contentKey(ctx, e.src, t.m); err != nil {
			return "", false, err
		}
		if recorded, err = e.ckpt.RecordedDstIDs(t.dstFolder); err != nil {
			return "", false, err
		}
	}
	e.mu.Lock()
	known := e.idx[t.dstFolder].flags
	seen := make(map[string]bool, len(known))
	for id := range known {
		seen[id] = true
	}
	e.mu.Unlock()
	var fresh []source.Message
	err := e.dst.List(ctx, t.dstFolder, func(m source.Message) error {
		if !seen[m.ID] {
			fresh = append(fresh, m)
		}
		return nil
	})
	if errors.Is(err, source.ErrFolderNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for _, m := range fresh {
		if recorded[m.ID] || (recorded != nil && e.claimed(t.dstFolder, m.ID)) {
			continue
		}
		var keys []string
		var err error
		if recorded != nil {
			var k string
			k, err = e.contentKey(ctx, e.dst, m)
			keys = []string{k}
		} else {
			keys, err = e.destinationKeys(ctx, m)
		}
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if slices.Contains(keys, want) && (recorded == nil || e.claim(t.dstFolder, m.ID)) {
			return m.ID, true, nil
		}
	}
	return "", false, nil
}

// put copies one message and returns the bytes that crossed: a source may
// not know sizes exactly (POP3), so the count comes from the copy itself.
func (e *engine) put(ctx context.Context, t *task) (string, int64, error) {
	if err := e.waitHold(ctx); err != nil {
		return "", 0, err
	}
	if err := e.lim.message(ctx); err != nil {
		return "", 0, err
	}
	if e.opt.Dedup == DedupNone {
		// No key will find this copy if the run dies before it is
		// recorded: say durably that it is being made (rule 9).
		if err := e.ckpt.Intend(t.m.Folder, t.m.ID, t.dstFolder); err != nil {
			return "", 0, fmt.Errorf("%w: %v", sink.ErrStop, err)
		}
	}
	r, err := e.src.Open(ctx, t.m)
	if err != nil {
		return "", 0, fmt.Errorf("open: %w", err)
	}
	cr := &countingReader{r: e.lim.reader(ctx, r)}
	id, err := e.sink.Put(ctx, t.dstFolder, t.m, cr)
	if err == nil && e.opt.Dedup == DedupNone && id != "" && !e.claim(t.dstFolder, id) {
		// A retry's recheck took this very copy for another message with
		// the same content; that one is recorded with it, so this one
		// needs a copy of its own.
		e.opt.Log.Warn("copy claimed by an identical message; copying again", "folder", t.fs.Name, "message", describe(t.m))
		r.Close()
		return e.put(ctx, t)
	}
	e.holdAll(err) // at once, before other workers start more
	if cerr := r.Close(); err == nil && cerr != nil {
		// A source that notices a problem only at the end (a short body)
		// says so here; the sink has already stored it, which Put's size
		// check prevents for sources that declare sizes.
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("write to %q: %w", t.dstFolder, err)
	}
	return id, cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// done records a copied message (rule 1 of package state: only now) and
// the duplicates that waited on it.
func (e *engine) done(t *task, id string, size int64) {
	e.mu.Lock()
	idx := e.idx[t.dstFolder]
	delete(idx.inflight, t.key)
	if e.opt.Dedup != DedupNone {
		idx.present[t.key] = presentEntry{id: id, thisRun: true}
	}
	idx.flags[id] = t.m.Flags
	t.fs.Copied++
	e.sum.Copied++
	if t.recopy {
		t.fs.Recopied++
		e.sum.Recopied++
	}
	t.fs.DuplicatesSkipped += len(t.followers)
	e.sum.DuplicatesSkipped += len(t.followers)
	t.fs.Bytes += size
	e.sum.Bytes += size
	e.mu.Unlock()
	e.opt.Log.Debug("copied", "folder", t.fs.Name, "message", describe(t.m), "bytes", size)
	if e.opt.DryRun {
		return
	}
	e.record(t.m, state.Record{DstFolder: t.dstFolder, DstID: id, Key: t.key, Flags: t.m.Flags, Copied: true}, t.dstKeys)
	for _, f := range t.followers {
		e.record(f, state.Record{DstFolder: t.dstFolder, DstID: id, Key: t.key, Flags: f.Flags}, nil)
	}
}

// markDone notes a message recorded as at the destination. A move may
// delete it at the source only if the destination holds these very bytes
// (line endings aside): its own bytes were copied, or it matched by content
// hash. A message matched by Message-ID alone may be another message with
// the same ID, so it is kept.
func (e *engine) markDone(m source.Message, rec state.Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := m.Folder + "\x00" + m.ID
	if e.doneSeen[k] {
		return
	}
	e.doneSeen[k] = true
	if rec.Copied || strings.HasPrefix(rec.Key, contentPrefix) {
		e.doneMsgs = append(e.doneMsgs, m)
	} else {
		e.sum.KeptAtSource++
	}
}

func (e *engine) record(m source.Message, rec state.Record, dstKeys []string) {
	e.markDone(m, rec)
	if err := e.ckpt.Add(state.Entry{SrcFolder: m.Folder, SrcID: m.ID, Record: rec, DstKeys: dstKeys}); err != nil {
		// A checkpoint that cannot be written costs speed on the next run,
		// not correctness; say so once per message rather than stopping.
		e.opt.Log.Error("checkpoint", "error", err)
	}
}

func (e *engine) fail(fs *FolderSummary, m source.Message, err error) {
	e.mu.Lock()
	fs.Failed++
	e.sum.Failed++
	e.sum.Errors = append(e.sum.Errors, ErrorEntry{Folder: fs.Name, Message: describe(m), Error: err.Error()})
	e.mu.Unlock()
	e.opt.Log.Error("message not copied", "folder", fs.Name, "message", describe(m), "error", err)
}

// warn records what a sink said of a message it stored with less than
// it carried.
func (e *engine) warn(folder string, m source.Message, warning string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sum.Warnings = append(e.sum.Warnings, ErrorEntry{Folder: folder, Message: describe(m), Error: warning})
}

func (e *engine) filtered(fs *FolderSummary, m source.Message) {
	e.mu.Lock()
	fs.Filtered++
	e.sum.Filtered++
	e.mu.Unlock()
	e.opt.Log.Debug("filtered out", "folder", fs.Name, "message", describe(m), "size", m.Size, "date", m.Date)
}

func (e *engine) vanished(fs *FolderSummary, m source.Message, err error) {
	e.mu.Lock()
	e.sum.Vanished++
	e.mu.Unlock()
	e.opt.Log.Warn("message deleted at the source during the run", "folder", fs.Name, "message", describe(m))
}

// describe names a message for errors and logs.
func describe(m source.Message) string {
	if m.MessageIDKnown && m.MessageID != "" {
		return fmt.Sprintf("%s (Message-ID %s)", m.ID, m.MessageID)
	}
	return m.ID
}

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
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailferry/mailferry/internal/pool"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// ErrCannotDelete: --delete-after-copy with a source that cannot delete.
var ErrCannotDelete = errors.New("this source cannot delete messages (--delete-after-copy)")

// ErrNothingSelected: the source holds no mailbox, or a folder pattern
// matches none of its folders. From cron that would be a backup of
// nothing reported as a success, so it is an error, naming what is there.
var ErrNothingSelected = errors.New("nothing selected")

// ErrInterrupted is returned when the context was cancelled (Ctrl-C). What
// was done is in the checkpoint; the next run continues.
var ErrInterrupted = errors.New("interrupted")

// Run copies every folder of src to dst. In a dry run dst may be
// sink.ReadOnly and ckpt a read-only checkpoint: nothing is written. The summary is returned
// even with an error.
func Run(ctx context.Context, src source.Source, dst sink.Sink, ckpt Checkpoint, opt Options) (*Summary, error) {
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
	day := budgetDay(opt.Limits.Now)
	if opt.Limits.ByteBudget > 0 {
		used, err := ckpt.Usage(day)
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
		if _, ok := dst.(sink.Deleter); !ok {
			return e.sum, ErrCannotMirror
		}
	}
	if w, ok := dst.(sink.Warner); ok && !opt.DryRun {
		w.OnWarning(e.warn)
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
	e.sum.total()
	if errors.Is(err, ErrBudget) {
		e.sum.BudgetReached = true
		if errors.Is(err, source.ErrQuota) {
			e.opt.Log.Warn("stopped: the source allows no more downloads for now (Gmail: about 2.5 GB a day); the next run continues where this one stopped", "answer", err.Error())
		} else {
			e.opt.Log.Warn("stopped: " + ErrBudget.Error())
		}
		err = nil
	}
	if opt.Limits.ByteBudget > 0 && !opt.DryRun && e.sum.Bytes > 0 {
		// Counted in the day the run began, the day whose budget it used.
		if uerr := ckpt.AddUsage(day, e.sum.Bytes); uerr != nil && err == nil {
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
	e.sum.countFailedFolders()
	e.sum.ElapsedSeconds = time.Since(start).Seconds()
	return e.sum, err
}

type engine struct {
	sel *folderSelector
	lim *limiter
	// budgetLeft is what the day's byte budget still allows (-1: none),
	// under mu.
	budgetLeft int64
	// subscribeAll: the source uses no subscriptions; subscribe every
	// folder copied, not only those subscribed at the source.
	subscribeAll bool
	// holdUntil: no new message is started before it (a server's backoff
	// request), under mu.
	holdUntil time.Time
	// slots holds a token per message in flight, Workers at most, shared
	// by the folders copied at once.
	slots chan struct{}
	// writers holds a token per folder copying, FolderParallelism at most
	// (writeGate).
	writers chan struct{}
	src     source.Source
	dst     sink.Sink
	ckpt    Checkpoint
	opt     Options

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
	// The destination's folders are listed while the source's are: a
	// round trip or two each over a WAN.
	var (
		dstFolders []source.Folder
		dstErr     error
		listed     = make(chan struct{})
	)
	go func() {
		defer close(listed)
		dstFolders, dstErr = e.listDstFolders(ctx)
	}()
	defer func() { <-listed }()
	var all []source.Folder
	err := e.retry(ctx, "list source folders", func() (err error) {
		all, err = e.src.Folders(ctx)
		return err
	})
	if errors.Is(err, source.ErrOtherLayout) {
		return fmt.Errorf("%w: %v", ErrNothingSelected, err)
	}
	if err != nil {
		return fmt.Errorf("list source folders: %w", err)
	}
	if len(all) == 0 {
		return fmt.Errorf("%w: the source holds no mailbox", ErrNothingSelected)
	}
	// A source where nothing is subscribed does not use subscriptions
	// (its user's client shows every folder): then every folder is
	// subscribed at the destination, where a client may show only those.
	e.subscribeAll = !slices.ContainsFunc(all, func(f source.Folder) bool { return !f.Unsubscribed })
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

	<-listed
	mapping, err := e.mapFolders(ctx, folders, dstFolders, dstErr)
	if err != nil {
		return err
	}
	e.expect(ctx, folders)

	// Folders are copied FolderParallelism at a time, sharing the workers
	// (slots): a server serialises writes into one mailbox, so speed into
	// IMAP comes from several mailboxes at once. Folders with the same
	// destination stay in one group, in order, so a destination folder is
	// only ever listed and written by one group. Each folder has workers
	// of its own, so a pooled source connection keeps serving the one
	// mailbox it has selected instead of switching back and forth; a
	// message takes a slot while it is in flight, so a folder copied
	// alone (the last and largest, often) has them all. With a fixed
	// share each, TestWAN's compressed run had 21 or 42 of its 64
	// messages in flight for its last 1.3 s.
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
	// Into a destination written several folders at a time (IMAP), twice
	// par groups are under way: those not writing list their folders (and
	// the destination's) while par groups write, and take a writer's
	// place only once they have something to copy (writeGate). Through
	// 20 ms each way that listing is round trips a folder no longer waits
	// for when a place frees; a folder with nothing to copy needs no
	// place at all. Into one written a folder at a time (Maildir, mbox:
	// the disk is the limit), one folder at a time as before: listed
	// ahead, a second folder's listing and its directory raised the peak
	// memory of 500,000 small messages from 169 MB to 200-209 MB.
	e.writers = make(chan struct{}, par)
	ahead := par
	if par > 1 {
		ahead = min(2*par, len(groups))
	}
	if t, ok := e.dst.(sink.InFlightTuner); ok && !e.opt.WorkersChosen {
		e.opt.Workers = t.InFlight(e.opt.Workers) // now that it has listed
	}
	e.slots = make(chan struct{}, e.opt.Workers)

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		planErr   error
		errOnce   sync.Once
		budgetHit atomic.Bool // no new folders once the budget is used up
	)
	next, planned := pool.Start(ahead, 0, func(group []source.Folder) {
		for _, f := range group {
			if runCtx.Err() != nil || budgetHit.Load() {
				return // and keep taking groups, so the feeder never blocks
			}
			if err := e.copyFolder(runCtx, stop, f, mapping[f.Name]); errors.Is(err, ErrBudget) {
				errOnce.Do(func() { planErr = err })
				budgetHit.Store(true) // copies in flight finish
			} else if err != nil {
				errOnce.Do(func() { planErr = err })
				stop(nil)
			}
		}
		// The group was the destination folder's only writer: its index
		// is not needed again, and holds an entry per message there.
		e.dropIndex(mapping[group[0].Name].name)
	})
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
	planned()
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

// What the day's byte budget says of a message.
type budgetVerdict int

const (
	budgetFits  budgetVerdict = iota // reserved: copy it
	budgetLater                      // not today: stop, the next run goes on
	budgetNever                      // larger than a whole day's budget
)

// ErrOverBudget fails a message larger than the whole daily byte budget:
// no day would ever copy it, so it is named (exit 3) and the run goes on
// rather than stopping at it every day.
var ErrOverBudget = errors.New("larger than the whole daily byte budget; raise daily_byte_budget to copy it")

// takeBudget reserves size bytes of the day's budget.
func (e *engine) takeBudget(size int64) budgetVerdict {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.budgetLeft < 0:
		return budgetFits
	case size > e.opt.Limits.ByteBudget:
		return budgetNever
	case size > e.budgetLeft:
		return budgetLater
	}
	e.budgetLeft -= size
	return budgetFits
}

// budgetDay names the UTC day a byte budget counts in.
func budgetDay(now func() time.Time) string {
	if now == nil {
		now = time.Now
	}
	return now().UTC().Format(time.DateOnly)
}

// expect tells a progress bar how many messages the run will look at,
// so its total and ETA hold from the start instead of growing folder by
// folder. Only with a bar: a run without one pays nothing for it.
func (e *engine) expect(ctx context.Context, folders []source.Folder) {
	c, ok := e.src.(source.Counter)
	if _, none := e.opt.Progress.(noProgress); none || !ok {
		return
	}
	total := 0
	for _, f := range folders {
		n, err := c.Count(ctx, f.Name)
		if err != nil {
			return // the bar grows as folders are listed, as without a count
		}
		total += n
	}
	e.opt.Progress.Expect(total)
}

// copyFolder plans one folder and copies what it must with its own
// workers, each message holding one of the run's slots while it is in
// flight, returning when they are done.
func (e *engine) copyFolder(ctx context.Context, stop context.CancelCauseFunc, f source.Folder, to folderMap) error {
	token, skipped, err := e.unchanged(ctx, f, to)
	if skipped || err != nil {
		return err
	}
	workers := e.opt.Workers
	tasks, copied := pool.Start(workers, workers, func(t *task) {
		select {
		case e.slots <- struct{}{}:
			defer func() { <-e.slots }()
		case <-ctx.Done(): // interrupted: copy returns at once
		}
		e.copy(ctx, stop, t)
	})
	gate := &writeGate{writers: e.writers}
	err = e.planFolder(ctx, f, to, tasks, gate)
	copied()
	gate.release()
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
	if err == nil && token.Token != "" && ctx.Err() == nil {
		err = e.saveUnchanged(f, token)
	}
	return err
}

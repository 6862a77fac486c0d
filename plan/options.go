package plan

import (
	"log/slog"
	"time"
)

// Options tune a run.
type Options struct {
	Dedup   Dedup
	Workers int // messages in flight at once; default 4
	// WorkersChosen: the user chose Workers, so a destination that would
	// want more (sink.InFlightTuner) does not get them.
	WorkersChosen bool
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
	// Expect: the selected folders hold about this many messages in all;
	// told once, before the first folder, when the source can count.
	Expect(messages int)
	// Settled: n messages of a folder were decided without a copy
	// (present, duplicate, filtered, unchanged folder).
	Settled(n int)
}

type noProgress struct{}

func (noProgress) Listing(string) {}

func (noProgress) Queued(int64) {}

func (noProgress) Finished(int64) {}

func (noProgress) Expect(int) {}

func (noProgress) Settled(int) {}

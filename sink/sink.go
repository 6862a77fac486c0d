// Package sink defines how mailferry writes messages to a mail store.
package sink

import (
	"context"
	"errors"
	"io"

	"github.com/mailferry/mailferry/source"
)

// Sink is a mail store that messages can be written to. Every Sink is also a
// source.Source, so the planner lists what a destination already holds with
// the same code that reads a source, and verify compares both sides alike.
type Sink interface {
	source.Source

	// CreateFolder creates folder and any missing parents. An existing
	// folder is not an error.
	CreateFolder(ctx context.Context, folder string) error

	// Put stores one message in folder with m's flags and date, reading its
	// content from r, and returns the ID under which the store lists it
	// (the same ID List reports).
	//
	// Durability: Put returns nil only once the message would survive a
	// crash of this process and of the machine (Maildir: file and directory
	// fsynced after the rename; IMAP: the server answered OK to APPEND).
	//
	// Atomicity: if Put returns an error, no part of the message is visible
	// in the store, and a later List does not show it. In particular, when
	// m.Size >= 0 and r yields more or fewer than m.Size bytes, Put fails
	// with an error wrapping source.ErrSizeMismatch. A cancelled ctx
	// aborts Put the same way.
	//
	// Put creates folder if it does not exist. It does not deduplicate:
	// two Puts store two messages.
	Put(ctx context.Context, folder string, m source.Message, r io.Reader) (id string, err error)
}

// FlagSetter is implemented by sinks that can change the flags of a message
// they hold, so that flags changed at the source since the last run are
// carried over.
type FlagSetter interface {
	// SetFlags replaces the flags of the message id in folder with flags.
	SetFlags(ctx context.Context, folder, id string, flags []string) error
}

// Deleter is a sink that can delete messages it holds: mirror
// (--mirror-deletes) needs it. The same method as source.Deleter, declared
// here so that a sink says it has it.
type Deleter interface {
	Delete(ctx context.Context, msgs []source.Message) error
}

// Releaser is a sink that holds memory for each folder it listed or
// wrote to (a Maildir sink: where each message's file is) and can let it
// go: the planner calls Release once nothing more of the run goes to
// folder. A folder used again after it is looked up afresh.
type Releaser interface {
	Release(folder string)
}

// InFlightTuner is a sink that, once its folders are listed, may want
// more messages in flight than its kind's default (store.Props.Workers):
// one whose server is far away keeps each message waiting a round trip
// for its answer, and only more of them at once keep the link busy. The
// planner asks it unless the user chose the count (--workers).
type InFlightTuner interface {
	InFlight(workers int) int
}

// Warmer is a sink that can get ready to write into a folder before the
// first message reaches it: an IMAP destination's APPEND connection for
// the folder is a dial, a login and a SELECT, round trips that over a WAN
// the first message would wait out after its own body had been read.
// The planner calls Warm when it queues a folder's first copy; Warm
// returns at once, and a sink that cannot warm just writes as before.
type Warmer interface {
	Warm(ctx context.Context, folder string)
}

// Subscriber is implemented by sinks with subscriptions (IMAP), so folders
// subscribed at the source are subscribed at the destination.
type Subscriber interface {
	Subscribe(ctx context.Context, folder string) error
}

// Errors a Put can fail with, for the planner to classify.
var (
	// ErrRejected: the store refused this one message for good (too big,
	// content it cannot carry). Other messages can go on.
	ErrRejected = errors.New("message rejected by the destination")
	// ErrStop: the store cannot take more (over quota, disk full). The run
	// stops cleanly.
	ErrStop = errors.New("destination cannot take more messages")
)

// Warner is implemented by sinks that may store a message with less than
// it carried (a Maildir folder has letters for 26 keywords only). The
// planner hands it a function through which each such message is named;
// the run reports it in its summary, never drops it silently.
type Warner interface {
	OnWarning(func(folder string, m source.Message, warning string))
}

// Package source defines how mailferry reads messages from a mail store.
//
// A store is a tree of folders. Folder names are UTF-8, "/"-separated, and
// the inbox is always "INBOX" whatever the store calls it. Adapters translate
// their native naming (Maildir++ dots, IMAP delimiters, modified UTF-7) to and
// from this form, so the planner never sees a store's own encoding.
package source

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
)

// Standard IMAP system flags (RFC 3501 §2.3.2). Anything else in
// Message.Flags is a keyword such as "$Forwarded" or "$Label1".
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
	// FlagForwarded is the keyword that Maildir's "P" (passed) flag maps to,
	// as mbsync and Dovecot's conventions have it.
	FlagForwarded = "$Forwarded"
)

// Sentinel errors. Adapters wrap them with context; callers test them with
// errors.Is.
var (
	// ErrFolderNotFound: the folder does not exist in the store.
	ErrFolderNotFound = errors.New("folder not found")
	// ErrOtherLayout is wrapped when a store holds no folder as it was
	// told to read it, but does hold some read another way (a Maildir
	// tree of another layout): the error says which.
	ErrOtherLayout = errors.New("no folder in the layout given")
	// ErrMessageNotFound: the message went away between List and Open.
	ErrMessageNotFound = errors.New("message not found")
	// ErrSizeMismatch: a body yielded more or fewer bytes than declared.
	ErrSizeMismatch = errors.New("message size differs from the size declared")
	// ErrQuota: the source lets no more be downloaded for now (Gmail's
	// daily IMAP allowance). The run stops cleanly, as at its own byte
	// budget, and the next one continues.
	ErrQuota = errors.New("the source allows no more downloads for now")
)

// TransientError marks a failure worth trying again: the connection broke,
// or the server asked to be left alone for a while (Microsoft's "Suggested
// Backoff Time"). Adapters mark what they know to be transient; network
// errors are taken as transient without it.
type TransientError struct {
	Err error
	// Delay is the wait the server asked for; 0 leaves it to the planner.
	Delay time.Duration
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Message describes one message in a folder. It carries metadata only; the
// content is read with Source.Open, and only when the planner decides to
// copy it.
type Message struct {
	// Folder is the "/"-separated UTF-8 folder name ("INBOX" for the inbox).
	Folder string
	// ID identifies the message within Folder for as long as the message
	// exists, across List calls, reconnects and flag changes (Maildir: the
	// file name before ":2,"; IMAP: "UIDVALIDITY/UID"; POP3: the UIDL). The
	// checkpoint records it, so it must not depend on anything that changes
	// while the message stays put.
	ID string
	// MessageID is the raw value of the Message-ID header field (unfolded),
	// when MessageIDKnown is true. Sources that get it cheaply while listing
	// (IMAP fetches it with the flags) fill it in; the others leave
	// MessageIDKnown false and the planner reads the header only for
	// messages it has not seen before.
	MessageID      string
	MessageIDKnown bool
	// Flags are IMAP-style: system flags (FlagSeen, ...) and keywords,
	// sorted, without duplicates. \Recent is never included.
	Flags []string
	// Date is the received date (IMAP INTERNALDATE, Maildir file mtime);
	// zero when the store has none.
	Date time.Time
	// Size is the number of bytes Open yields, or -1 when unknown.
	Size int64
}

// Folder describes one folder of a store.
type Folder struct {
	// Name is the "/"-separated UTF-8 name.
	Name string
	// SpecialUse is an RFC 6154 role such as `\Sent`, or "".
	SpecialUse string
	// Unsubscribed is true when the store says the folder is not
	// subscribed (IMAP). Stores without subscriptions leave it false.
	Unsubscribed bool
}

// Source is a mail store that messages can be read from.
//
// Methods may be called from several goroutines at once unless an adapter
// documents otherwise. Nothing a Source does may change the store: no flag
// is set (IMAP reads use BODY.PEEK), no file is renamed (Maildir new/ stays
// new/).
type Source interface {
	// Folders returns every folder that can hold messages, in no particular
	// order.
	Folders(ctx context.Context) ([]Folder, error)

	// List calls fn once for every message in folder, in the calling
	// goroutine, without reading bodies. If fn returns an error, List stops
	// and returns it. A missing folder gives an error wrapping
	// ErrFolderNotFound.
	List(ctx context.Context, folder string, fn func(Message) error) error

	// Open returns the content of m exactly as the store holds it (Maildir:
	// LF line endings; IMAP and POP3: CRLF). The caller must Close it. A
	// message that has gone away gives an error wrapping ErrMessageNotFound.
	// Read errors, including a body cut short, are returned by Read, never
	// turned into a clean EOF.
	Open(ctx context.Context, m Message) (io.ReadCloser, error)

	// Close releases files and connections. It is safe to call twice.
	Close() error
}

// Emit calls fn for each message in order, as List does: it stops at fn's
// first error, or when ctx is done.
func Emit(ctx context.Context, msgs []Message, fn func(Message) error) error {
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// NormalizeFlags sorts flags, drops duplicates (system flags compared
// case-insensitively, as IMAP does), drops \Recent (a session flag no store
// can set) and returns the result. It does not modify its argument.
func NormalizeFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		f = strings.TrimSpace(f)
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		f = canonicalSystemFlag(f)
		k := strings.ToLower(f)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func canonicalSystemFlag(f string) string {
	for _, s := range []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft} {
		if strings.EqualFold(f, s) {
			return s
		}
	}
	return f
}

// SameFlags reports whether a and b hold the same flags. Keywords compare
// case-insensitively, because some servers fold their case (RFC 3501 makes
// flag names case-insensitive).
func SameFlags(a, b []string) bool {
	fold := func(fs []string) []string {
		fs = NormalizeFlags(fs)
		for i := range fs {
			fs[i] = strings.ToLower(fs[i])
		}
		slices.Sort(fs)
		return fs
	}
	return slices.Equal(fold(a), fold(b))
}

// Describer is implemented by sources whose List leaves out details that
// cost a round trip per message (POP3 needs a TOP for the Message-ID and
// the date). The planner calls Describe only for messages the checkpoint
// does not know, before it keys or copies them.
type Describer interface {
	// Describe fills in m's MessageID (setting MessageIDKnown) and Date.
	Describe(ctx context.Context, m *Message) error
}

// Watcher is implemented by sources that can say when they change, so a
// watch need not wait for its next pass (IMAP: IDLE, RFC 2177).
type Watcher interface {
	// Watch calls changed once as soon as it is watching, since what
	// changed before then went unseen (after the pass that listed the
	// source, before the watch began), then whenever the source may have
	// changed, until ctx ends (nil) or watching fails (the connection
	// broke: the caller tries again later) or cannot be done at all
	// (ErrCannotWatch). changed must not block.
	Watch(ctx context.Context, changed func()) error
}

// ErrCannotWatch: this source, as configured, cannot say when it changes
// (an IMAP server without IDLE); passes at an interval must do.
var ErrCannotWatch = errors.New("the source cannot report changes")

// Prefetcher is implemented by sources that read faster in bulk than one
// message at a time (IMAP: one UID FETCH for many messages instead of a
// round trip each). The planner calls Prefetch with the messages of one
// folder it is about to Open, in the order it will open them; a source
// that is also a Describer is called once, with the messages it is about
// to Describe (and then Open), before the first of them.
type Prefetcher interface {
	// Prefetch returns at once; reading ahead happens in the background,
	// within a memory bound, and stops when ctx ends. It is only a hint:
	// Open must still return any message, read ahead or not, exactly as
	// it would without it, and a message read ahead but never opened must
	// not be lost or leak memory beyond the bound.
	Prefetch(ctx context.Context, folder string, msgs []Message)
}

// Deleter is implemented by sources that can delete what was copied, for
// move semantics (--delete-after-copy).
type Deleter interface {
	// Delete removes msgs from the store. The planner calls it only for
	// messages that are durable at the destination and recorded in a
	// checkpoint that has been flushed. It is all or nothing where the
	// protocol allows (POP3: deletions take effect at QUIT).
	Delete(ctx context.Context, msgs []Message) error
}

// Cache keeps what an adapter worked out about a store between runs (the
// CLI keeps it in the checkpoint). An entry is a hint, never the truth:
// adapters check it against the store before they rely on it, and a lost
// cache only costs time.
type Cache interface {
	Cached(key string) ([]byte, error)
	SetCached(key string, value []byte) error
}

// CacheUser is implemented by sources that can save work with a Cache
// (mbox: the offsets of the messages in a file, so a re-run reads only
// what was appended). UseCache is called before Folders.
type CacheUser interface {
	UseCache(Cache)
}

// Counter is implemented by sources that can count a folder's messages
// cheaply (IMAP: STATUS; Maildir: the directory entries), so a progress
// bar knows the whole run's size before the first folder is listed.
type Counter interface {
	// Count returns about how many messages folder holds.
	Count(ctx context.Context, folder string) (int, error)
}

// Stater is implemented by sources that can tell cheaply whether a folder
// changed, so a re-run can skip listing an unchanged one (IMAP: STATUS
// with CONDSTORE's HIGHESTMODSEQ; Maildir: the directories' mtimes).
type Stater interface {
	// State returns a token that differs whenever a message of folder is
	// added, removed or has its flags changed; "" when it cannot tell now.
	State(ctx context.Context, folder string) (string, error)
}

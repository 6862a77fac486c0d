// Package store is the registry of store kinds: what each kind of mail
// store (Maildir, mbox, IMAP, POP3) declares about itself, and the one way
// the command opens an endpoint. A kind is its adapter package, which
// declares a Kind, plus one line in the list that registers it (kinds.go in
// the main package), in the spirit of restic's backend list.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// Kind is what a store kind declares: its URL schemes (with the options
// each accepts: the endpoint parser validates from them), how to open it,
// and the properties the engine tunes itself by.
type Kind struct {
	Name    string
	Schemes []endpoint.Scheme
	// OpenSource opens the store for reading.
	OpenSource func(ctx context.Context, e *endpoint.Endpoint, env Env) (source.Source, error)
	// OpenSink opens it for writing; nil for a kind that is only a source.
	OpenSink func(ctx context.Context, e *endpoint.Endpoint, env Env) (sink.Sink, error)
	// OpenLook opens a destination to be looked at only (a dry run,
	// verify); nil means OpenSource. Maildir uses it to take a missing
	// tree for an empty one.
	OpenLook func(ctx context.Context, e *endpoint.Endpoint, env Env) (source.Source, error)
	Props    Props
	// Tune, if set, adjusts Props for one endpoint (its options).
	Tune func(e *endpoint.Endpoint, p Props) Props
}

// Props tune the engine when the kind is the destination. Zero values take
// the defaults in Destination.
type Props struct {
	// Workers is how many messages are in flight (default 16).
	Workers int
	// FolderParallelism is how many folders are written at once (default 1).
	FolderParallelism int
	// CrashGrace is how long after a killed run's last sign of life the
	// destination is listed, for writes it may still commit (IMAP).
	CrashGrace time.Duration
}

// Env is what the command gives a kind to open an endpoint with.
type Env struct {
	Log *slog.Logger
	// Secret returns the password or token for a server endpoint; the
	// command finds it (environment, files, commands, OAuth2).
	Secret func() (Secret, error)
	// MaxConns caps the endpoint's connections (0: no cap).
	MaxConns int
	// AllMail reads a Gmail source as its server lists it: All Mail,
	// Important and Starred as folders (the all_mail setting).
	AllMail bool
	// GmailKeywords reads a Gmail source as one copy of each message, its
	// labels as keywords (gmail_labels: keywords).
	GmailKeywords bool
}

// Secret is how a server endpoint logs in: a password, or a token (or a
// source of fresh ones).
type Secret struct {
	Password    string
	Token       string
	TokenSource func() (string, error)
}

// ErrUsage is wrapped by errors the user fixes in the command line or the
// config (exit code 2).
var ErrUsage = errors.New("usage")

// Usagef returns an error that is the user's to fix, worded by format.
func Usagef(format string, a ...any) error {
	return usageError(fmt.Sprintf(format, a...))
}

type usageError string

func (e usageError) Error() string        { return string(e) }
func (e usageError) Is(target error) bool { return target == ErrUsage }

var (
	mu    sync.RWMutex
	kinds = map[string]*Kind{}
)

// Register adds a kind and its schemes. Registering a name twice is a
// programming error.
func Register(k *Kind) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("store: kind %q registered twice", k.Name))
	}
	for _, sc := range k.Schemes {
		sc.Kind = k.Name
		endpoint.Register(sc)
	}
	kinds[k.Name] = k
}

// Lookup returns the kind of an endpoint.
func Lookup(e *endpoint.Endpoint) (*Kind, error) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[e.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: no store kind %q is registered", e, e.Kind)
	}
	return k, nil
}

// Names returns the registered kinds, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for n := range kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// OpenSource opens e for reading.
func OpenSource(ctx context.Context, e *endpoint.Endpoint, env Env) (source.Source, error) {
	k, err := Lookup(e)
	if err != nil {
		return nil, err
	}
	return k.OpenSource(ctx, e, env.defaults())
}

// OpenDestination opens e for writing or, lookOnly, to be looked at: then
// it is served read-only, every write refused.
func OpenDestination(ctx context.Context, e *endpoint.Endpoint, env Env, lookOnly bool) (sink.Sink, error) {
	k, err := Lookup(e)
	if err != nil {
		return nil, err
	}
	if k.OpenSink == nil {
		return nil, Usagef("%s: %s can only be a source", e, k.Name)
	}
	env = env.defaults()
	if !lookOnly {
		return k.OpenSink(ctx, e, env)
	}
	open := k.OpenLook
	if open == nil {
		open = k.OpenSource
	}
	src, err := open(ctx, e, env)
	if err != nil {
		return nil, err
	}
	return sink.ReadOnly(src), nil
}

// Destination returns the engine's settings for writing to e's kind.
func Destination(e *endpoint.Endpoint) Props {
	p := Props{}
	if k, err := Lookup(e); err == nil {
		p = k.Props
		if k.Tune != nil {
			p = k.Tune(e, p)
		}
	}
	if p.Workers == 0 {
		p.Workers = 16
	}
	if p.FolderParallelism == 0 {
		p.FolderParallelism = 1
	}
	return p
}

func (env Env) defaults() Env {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Secret == nil {
		env.Secret = func() (Secret, error) { return Secret{}, Usagef("no password or token given") }
	}
	return env
}

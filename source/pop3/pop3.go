// Package pop3 reads mail from a POP3 server (RFC 1939), byte-exactly, with
// each message keyed by its UIDL.
//
// go-pop3 v1.0.0 does the commands it gets right (USER/PASS, AUTH, STAT,
// LIST, UIDL, DELE, RSET, QUIT), guarded against its panics on malformed
// replies. It has no TLS setup beyond skip-verify, no STLS, no CAPA, no
// deadlines, and its RETR and TOP corrupt mail (library audit #1–#3), so
// this package dials the connection itself (TLS, STLS, CAPA, greeting, all
// under an idle deadline), hands go-pop3 a connection that replays the
// greeting, and reads RETR and TOP from the same connection with its own
// byte-exact dot-unstuffer. POP3 is strictly lockstep, so between complete
// responses neither reader holds buffered bytes.
package pop3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/source"
)

// TLS modes: those of package endpoint, named here for callers of Config.
const (
	TLSImplicit = endpoint.TLSImplicit
	TLSStart    = endpoint.TLSStart
	TLSNone     = endpoint.TLSNone
)

// Config says how to reach and log in to a server.
type Config struct {
	Addr               string
	TLS                string
	CAFile             string
	InsecureSkipVerify bool
	User, Password     string
	// Token is an OAuth2 access token: login uses SASL OAUTHBEARER or
	// XOAUTH2, as CAPA lists them.
	Token string
	// Auth forces a mechanism: "plain" (SASL), "apop", "user", "xoauth2",
	// "oauthbearer". Default: with a Token, OAUTHBEARER or XOAUTH2 as
	// listed; else SASL PLAIN when CAPA lists it, else APOP when the
	// greeting offers it, else USER/PASS.
	Auth string
	// Folder is the name the mailbox is listed under (default INBOX).
	Folder  string
	Timeout time.Duration // default 2 minutes
	Log     *slog.Logger
	// NoPipelining sends one command at a time even to a server that
	// says PIPELINING (?pipelining=off: for a server that gets it wrong,
	// and for the benchmark's A/B).
	NoPipelining bool
}

var (
	ErrAuth  = errors.New("login rejected")
	ErrNoTLS = errors.New("server does not offer STLS")
)

// Store is a POP3 mailbox: one folder. It implements source.Source,
// source.Describer and source.Deleter.
type Store struct {
	cfg Config

	// mu is held for the whole of each command: a POP3 session is one
	// conversation.
	mu     sync.Mutex
	sess   *session
	byID   map[string]int // UIDL -> message number in sess
	sizes  map[int]int64  // message number -> LIST size
	noUIDL bool
	// noPeek: TOP cannot stand in for RETR on this server (see read).
	noPeek   bool
	warn     sync.Once
	peekWarn sync.Once
	// kept holds messages Describe retrieved whole, by ID, for the Open
	// that follows; keptOrder is oldest first (see Describe). keptMu
	// guards the three, so an Open of a kept body does not wait on mu.
	keptMu    sync.Mutex
	kept      map[string][]byte
	keptOrder []string
	keptBytes int64
	// ahead is what the planner will describe next (Prefetch), for a
	// server that takes pipelined commands (pipeline.go).
	ahead []queued
	// live is the session's socket, closed by a cancelled run (see
	// netx.Live); unwatch stops that watch.
	live    netx.Live
	unwatch func() bool
}

// Open connects, logs in, and lists the mailbox once, so a bad password or
// certificate is reported before any work starts.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Folder == "" {
		cfg.Folder = "INBOX"
	}
	s := &Store{cfg: cfg}
	// Open's context is the run's: once it is cancelled, a wait on the
	// server ends now, not when the server answers or times out.
	s.unwatch = context.AfterFunc(ctx, s.live.Abort)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := netx.Retry(ctx, 4, func() (*session, error) { return s.session(ctx) }); err != nil {
		s.unwatch()
		return nil, err
	}
	return s, nil
}

// Folders implements source.Source: a POP3 mailbox is one folder.
func (s *Store) Folders(context.Context) ([]source.Folder, error) {
	return []source.Folder{{Name: s.cfg.Folder}}, nil
}

// List implements source.Source. It sends UIDL (LIST's sizes are not
// trusted to be exact, so sizes are unknown), or, on a server without
// UIDL, reads every message to key it by content.
func (s *Store) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if folder != s.cfg.Folder {
		return fmt.Errorf("folder %q: %w", folder, source.ErrFolderNotFound)
	}
	s.mu.Lock()
	msgs, err := s.list(ctx)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return source.Emit(ctx, msgs, fn)
}

func (s *Store) list(ctx context.Context) ([]source.Message, error) {
	if _, err := s.session(ctx); err != nil {
		return nil, err
	}
	if err := s.index(ctx); err != nil {
		s.drop()
		return nil, err
	}
	if s.noUIDL {
		return s.listByContent(ctx)
	}
	out := make([]source.Message, 0, len(s.byID))
	for id := range s.byID {
		out = append(out, source.Message{Folder: s.cfg.Folder, ID: id, Size: -1})
	}
	// In mailbox order: the order mail arrived.
	slices.SortFunc(out, func(a, b source.Message) int { return s.byID[a.ID] - s.byID[b.ID] })
	return out, nil
}

func (s *Store) listByContent(ctx context.Context) ([]source.Message, error) {
	var stat int
	sess := s.sess
	err := safe(func() error { var err error; stat, _, err = sess.c.Stat(); return err })
	if err != nil {
		s.drop()
		return nil, fmt.Errorf("STAT: %w", err)
	}
	seen := map[string]int{}
	var out []source.Message
	for n := 1; n <= stat; n++ {
		h := sha256.New()
		if err := s.read(ctx, "RETR", n, h); err != nil {
			return nil, err
		}
		id := "sha256:" + hex.EncodeToString(h.Sum(nil))
		seen[id]++
		if seen[id] > 1 {
			id += "#" + strconv.Itoa(seen[id]) // identical twins stay two messages
		}
		s.byID[id] = n
		out = append(out, source.Message{Folder: s.cfg.Folder, ID: id, Size: -1})
	}
	return out, nil
}

// Delete implements source.Deleter: DELE for each message, then QUIT, at
// which point the server deletes them (RFC 1939 §6). Any failure before QUIT
// deletes nothing.
func (s *Store) Delete(ctx context.Context, msgs []source.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.session(ctx)
	if err != nil {
		return err
	}
	sess.dc.Begin()
	defer sess.dc.End()
	for _, m := range msgs {
		n, ok := s.byID[m.ID]
		if !ok {
			continue // gone already
		}
		if err := safe(func() error { return sess.c.Dele(n) }); err != nil {
			s.drop()
			return fmt.Errorf("DELE %d (%s): %w", n, m.ID, err)
		}
	}
	err = safe(func() error { return sess.c.Quit() })
	s.sess = nil
	if err != nil {
		sess.raw.Close()
		return fmt.Errorf("QUIT (which commits the deletions): %w", err)
	}
	return nil
}

// Close implements source.Source: QUIT, which deletes nothing that was not
// marked in this session (only Delete marks).
func (s *Store) Close() error {
	s.unwatch()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	sess := s.sess
	s.sess = nil
	sess.dc.Begin()
	defer sess.dc.End()
	safe(func() error { return sess.c.Quit() })
	sess.raw.Close()
	return nil
}

var (
	_ source.Source    = (*Store)(nil)
	_ source.Describer = (*Store)(nil)
	_ source.Deleter   = (*Store)(nil)
)

package imap

import (
	"context"
	"errors"
	"fmt"
	"time"

	srcimap "github.com/mailferry/mailferry/source/imap"

	"github.com/emersion/go-imap/v2"
	"github.com/mailferry/mailferry/internal/imapappend"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// After a failed attempt to open an appender's connection, messages go
// through the shared connections for this long.
const appenderCooldown = 30 * time.Second

// appender is a mailbox's imapappend.Appender with the number of callers
// between Sink.appender and doneWith (under Sink.apMu): one in use is not
// closed to make room for another.
type appender struct {
	*imapappend.Appender
	users int
}

// appender returns mailbox's appender, making one when the server offers
// LITERAL+ and a connection can be spared, with m's flags as the mailbox
// keeps them; nil means go-imap's APPEND. The caller gives it back with
// doneWith.
func (s *Sink) appender(ctx context.Context, folder, mailbox string, m source.Message, size int64) (*appender, []imap.Flag) {
	if size > imapappend.LiteralPlusMax || !imapappend.Quotable(mailbox) {
		return nil, nil
	}
	s.apMu.Lock()
	defer s.apMu.Unlock()
	if s.noAppender {
		return nil, nil
	}
	a := s.appenders[mailbox]
	if a != nil && a.Broken() {
		delete(s.appenders, mailbox)
		a = nil
	}
	if a == nil {
		if time.Now().Before(s.appenderAfter) {
			return nil, nil
		}
		if a = s.newAppender(ctx, folder, mailbox); a == nil {
			return nil, nil
		}
		s.appenders[mailbox] = a
	}
	s.mu.Lock()
	perm, ok := s.perm[mailbox]
	s.mu.Unlock()
	if !ok {
		return nil, nil // forgotten after TRYCREATE: go-imap's path selects
	}
	a.users++
	return a, s.keepFlags(folder, perm, m.Flags)
}

// doneWith gives back an appender from s.appender.
func (s *Sink) doneWith(a *appender) {
	s.apMu.Lock()
	a.users--
	s.apMu.Unlock()
}

// newAppender takes a pool connection for mailbox's appender, with s.apMu
// held. Appenders keep their connections, so at least one of the pool's is
// left for everything else; to make room, the least recently used idle
// appender is closed.
func (s *Sink) newAppender(ctx context.Context, folder, mailbox string) *appender {
	for name, a := range s.appenders {
		if a.Broken() {
			delete(s.appenders, name)
		}
	}
	if len(s.appenders) >= s.Cfg.Conns-1 {
		var lru string
		var last time.Time
		for name, a := range s.appenders {
			if a.users == 0 && a.Idle() && (lru == "" || a.LastUsed().Before(last)) {
				lru, last = name, a.LastUsed()
			}
		}
		if lru == "" {
			return nil
		}
		s.appenders[lru].Close()
		delete(s.appenders, lru)
	}
	// PERMANENTFLAGS first, on a pooled connection: the appender's never
	// selects.
	cn, err := s.Pool.Get(ctx, mailbox)
	if err != nil {
		return nil // go-imap's path meets the same error and reports it
	}
	if caps := cn.Client().Caps(); !caps.Has(imap.CapLiteralPlus) || caps.Has(imap.CapIMAP4rev2) {
		// IMAP4rev2 would take the name in UTF-8, not modified UTF-7.
		s.Pool.Put(cn, false)
		s.noAppender = true
		return nil
	}
	_, err = s.allowedFlags(cn, folder, mailbox, nil)
	s.Pool.Put(cn, err != nil && !isNO(err))
	if err != nil {
		return nil
	}
	st, err := s.Pool.Detached(ctx)
	if errors.Is(err, srcimap.ErrNoHandoff) {
		s.noAppender = true
		return nil
	}
	if err != nil {
		// Every Put waits on apMu while this is tried: a server refusing
		// connections is not asked again for a while.
		s.appenderAfter = time.Now().Add(appenderCooldown)
		s.Cfg.Log.Debug("no APPEND connection of its own; using the shared ones", "folder", folder, "error", err)
		return nil
	}
	return &appender{Appender: imapappend.New(mailbox, st)}
}

// appendPlus appends through a.
func (s *Sink) appendPlus(ctx context.Context, a *appender, flags []imap.Flag, folder string, m source.Message, sp *spool.Spool) (string, error) {
	defer s.doneWith(a)
	// RFC 7889: a message over the server's APPENDLIMIT is refused before
	// its bytes are sent.
	if limit, ok := a.Caps().AppendLimit(); ok && limit != nil && sp.Size() > int64(*limit) {
		return "", fmt.Errorf("%d bytes, over the server's APPENDLIMIT of %d: %w", sp.Size(), *limit, sink.ErrRejected)
	}
	r, err := a.Append(ctx, flags, m.Date, sp)
	if err != nil {
		return "", fmt.Errorf("append to %q: %w", folder, err)
	}
	if r.UID == 0 {
		return "", nil // no UIDPLUS: the copy has no ID we know
	}
	return srcimap.MessageID(r.UIDValidity, r.UID), nil
}

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
// closed to make room for another. While it is being made, Appender is
// nil and making is open: callers for its mailbox wait, others go on.
type appender struct {
	*imapappend.Appender
	users  int
	making chan struct{}
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
	for {
		if s.noAppender {
			return nil, nil
		}
		a := s.appenders[mailbox]
		if a != nil && a.making != nil {
			// Being made by another caller: over a WAN that is a third of
			// a second of dialling, login and COMPRESS, which every other
			// mailbox's messages must not wait out (apMu is not held).
			ch := a.making
			s.apMu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			s.apMu.Lock()
			if ctx.Err() != nil {
				return nil, nil
			}
			continue
		}
		if a != nil && a.Broken() {
			delete(s.appenders, mailbox)
			a = nil
		}
		if a == nil {
			if time.Now().Before(s.appenderAfter) || !s.roomForAppender() {
				return nil, nil
			}
			a = &appender{making: make(chan struct{})}
			s.appenders[mailbox] = a
			s.apMu.Unlock()
			made, err := s.newAppender(ctx, folder, mailbox)
			s.apMu.Lock()
			close(a.making)
			a.making = nil
			if err != nil {
				// Every Put goes through the shared connections for a
				// while: a server refusing connections is not asked again
				// for each message.
				s.appenderAfter = time.Now().Add(appenderCooldown)
				s.Cfg.Log.Debug("no APPEND connection of its own; using the shared ones", "folder", folder, "error", err)
			}
			if made == nil || s.noAppender { // none, or Close came meanwhile
				if made != nil {
					made.Close()
				}
				delete(s.appenders, mailbox)
				return nil, nil
			}
			a.Appender = made
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
}

// Warm implements sink.Warmer: the folder's appender is made in the
// background, so that the dial, login and SELECT run while the source
// reads the folder's first messages instead of after (through 20 ms
// each way, four round trips a folder). It makes one only as s.appender
// would for a message (LITERAL+, a connection to spare); Close waits for
// it.
func (s *Sink) Warm(ctx context.Context, folder string) {
	s.warming.Add(1)
	go func() {
		defer s.warming.Done()
		mailbox, err := s.Mailbox(ctx, folder)
		if err != nil {
			return // the first Put meets it and says so
		}
		if a, _ := s.appender(ctx, folder, mailbox, source.Message{}, 0); a != nil {
			s.doneWith(a)
		}
	}()
}

var _ sink.Warmer = (*Sink)(nil)

// doneWith gives back an appender from s.appender.
func (s *Sink) doneWith(a *appender) {
	s.apMu.Lock()
	a.users--
	s.apMu.Unlock()
}

// roomForAppender reports, with s.apMu held, whether another appender may
// be made. Appenders keep their connections, so at least one of the
// pool's is left for everything else; to make room, the least recently
// used idle appender is closed.
func (s *Sink) roomForAppender() bool {
	for name, a := range s.appenders {
		if a.making == nil && a.Broken() {
			delete(s.appenders, name)
		}
	}
	if len(s.appenders) < s.Cfg.Conns-1 {
		return true
	}
	var lru string
	var last time.Time
	for name, a := range s.appenders {
		if a.making == nil && a.users == 0 && a.Idle() && (lru == "" || a.LastUsed().Before(last)) {
			lru, last = name, a.LastUsed()
		}
	}
	if lru == "" {
		return false
	}
	s.appenders[lru].Close()
	delete(s.appenders, lru)
	return true
}

// newAppender opens mailbox's appender, without s.apMu: nil and no error
// when this server or mailbox takes none (s.noAppender is then set); an
// error when its connection could not be made.
func (s *Sink) newAppender(ctx context.Context, folder, mailbox string) (*imapappend.Appender, error) {
	// PERMANENTFLAGS first, on a pooled connection: the appender's never
	// selects.
	cn, err := s.Pool.Get(ctx, mailbox)
	if err != nil {
		return nil, nil // go-imap's path meets the same error and reports it
	}
	if caps := cn.Client().Caps(); !caps.Has(imap.CapLiteralPlus) || caps.Has(imap.CapIMAP4rev2) {
		// IMAP4rev2 would take the name in UTF-8, not modified UTF-7.
		s.Pool.Put(cn, false)
		s.setNoAppender()
		return nil, nil
	}
	// The appender's own connection is dialled while PERMANENTFLAGS is
	// asked: over a WAN each is round trips the mailbox's messages wait.
	type dialed struct {
		st  *srcimap.Stream
		err error
	}
	dial := make(chan dialed, 1)
	go func() {
		st, err := s.Pool.Detached(ctx)
		dial <- dialed{st, err}
	}()
	_, err = s.allowedFlags(cn, folder, mailbox, nil)
	s.Pool.Put(cn, err != nil && !isNO(err))
	d := <-dial
	if err != nil {
		if d.st != nil {
			d.st.Close()
		}
		return nil, nil
	}
	if errors.Is(d.err, srcimap.ErrNoHandoff) {
		s.setNoAppender()
		return nil, nil
	}
	if d.err != nil {
		return nil, d.err
	}
	return imapappend.New(mailbox, d.st), nil
}

func (s *Sink) setNoAppender() {
	s.apMu.Lock()
	s.noAppender = true
	s.apMu.Unlock()
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

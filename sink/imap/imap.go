// Package imap writes messages to an IMAP server with APPEND, keeping flags
// and INTERNALDATE. It is built on source/imap, so the destination is listed
// (for dedup) with the same code that reads a source.
package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/internal/ctxio"
	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

// Sink is an IMAP account messages are appended to.
type Sink struct {
	*srcimap.Store

	mu         sync.Mutex
	created    map[string]bool        // there: listed, or created by this run
	subscribed map[string]bool        // subscribed: listed so, or by this run
	perm       map[string][]imap.Flag // PERMANENTFLAGS by server mailbox name

	apMu       sync.Mutex           // guards the four below
	appenders  map[string]*appender // by server mailbox name
	noAppender bool                 // the server or TLS mode allows none
	// appenderAfter: no new appender before then (one failed to connect)
	appenderAfter time.Time
	warming       sync.WaitGroup // Warm's makers, waited for by Close

	gm gmailDest // into a Gmail account (gmail.go)
}

// Open connects and logs in.
func Open(ctx context.Context, cfg srcimap.Config) (*Sink, error) {
	// Written to, a Gmail account is the folders its server lists.
	cfg.KeepAllMail = true
	st, err := srcimap.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Sink{Store: st, created: map[string]bool{}, subscribed: map[string]bool{}, perm: map[string][]imap.Flag{}, appenders: map[string]*appender{}}
	if s.gm.on, err = st.IsGmail(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// Folders implements source.Source (the destination's listing; into
// Gmail, showGmail) and remembers what it says: a folder listed is not
// created again, nor subscribed again when the listing says it is. Each
// is a round trip, for every folder a re-run writes to.
func (s *Sink) Folders(ctx context.Context) ([]source.Folder, error) {
	folders, err := s.Store.Folders(ctx)
	if err != nil {
		return folders, err
	}
	s.showGmail(folders)
	subsListed := s.SubscriptionsListed()
	s.mu.Lock()
	for _, f := range folders {
		s.created[f.Name] = true
		if subsListed && !f.Unsubscribed {
			s.subscribed[f.Name] = true
		}
	}
	s.mu.Unlock()
	return folders, nil
}

// Close implements source.Source: the appenders' connections, then the
// pool's.
func (s *Sink) Close() error {
	s.apMu.Lock()
	for name, a := range s.appenders {
		if a.making == nil { // one being made is closed by its maker
			a.Close()
		}
		delete(s.appenders, name)
	}
	s.noAppender = true
	s.apMu.Unlock()
	// A maker still at work sees noAppender and closes what it made; the
	// run's context, ended by now, cuts its dial short.
	s.warming.Wait()
	return s.Store.Close()
}

// CreateFolder implements sink.Sink: CREATE, which makes parents on every
// server we know (RFC 3501 §6.3.3 allows it).
func (s *Sink) CreateFolder(ctx context.Context, folder string) error {
	s.mu.Lock()
	done := s.created[folder]
	s.mu.Unlock()
	if done || strings.EqualFold(folder, "INBOX") {
		return nil
	}
	err := s.onMailbox(ctx, folder, func(c *imapclient.Client, mailbox string) error {
		if err := c.Create(mailbox, nil).Wait(); err != nil && !alreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create folder %q: %w", folder, err)
	}
	s.mu.Lock()
	s.created[folder] = true
	s.mu.Unlock()
	return nil
}

// Subscribe implements sink.Subscriber.
func (s *Sink) Subscribe(ctx context.Context, folder string) error {
	s.mu.Lock()
	done := s.subscribed[folder]
	s.mu.Unlock()
	if done {
		return nil
	}
	err := s.onMailbox(ctx, folder, func(c *imapclient.Client, mailbox string) error {
		return c.Subscribe(mailbox).Wait()
	})
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", folder, err)
	}
	s.mu.Lock()
	s.subscribed[folder] = true
	s.mu.Unlock()
	return nil
}

// onMailbox runs fn with a pooled connection and folder's server name. The
// connection goes back to the pool unless fn failed other than by the
// server's NO.
func (s *Sink) onMailbox(ctx context.Context, folder string, fn func(c *imapclient.Client, mailbox string) error) error {
	mailbox, err := s.Mailbox(ctx, folder)
	if err != nil {
		return srcimap.Transport(err)
	}
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return srcimap.Transport(err)
	}
	err = cn.Do(func() error { return fn(cn.Client(), mailbox) })
	s.Pool.Put(cn, err != nil && !isNO(err))
	return srcimap.Transport(err)
}

func alreadyExists(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return false
	}
	// Dovecot and most servers send [ALREADYEXISTS] (RFC 5530); older
	// ones only say so in the text.
	return ie.Code == imap.ResponseCodeAlreadyExists || strings.Contains(strings.ToLower(ie.Text), "exists")
}

func isNO(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo
}

// copyBuf is the buffer a message is converted to CRLF through: a third
// read into, the rest for what the conversion writes.
const copyBuf = 96 << 10

// Put implements sink.Sink.
func (s *Sink) Put(ctx context.Context, folder string, m source.Message, r io.Reader) (string, error) {
	// APPEND needs the exact CRLF length up front, and a TRYCREATE retry
	// needs the bytes again: the message is spooled.
	sp := &spool.Spool{}
	defer sp.Close()
	src := r
	if m.Size >= 0 {
		src = io.LimitReader(r, m.Size+1)
	}
	if m.Size >= 0 {
		// CRLF from LF adds a byte a line: room for lines of 32 bytes on
		// average, so most messages need no second allocation.
		sp.Grow(m.Size + m.Size/32 + 64)
	}
	buf := bufpool.Get(copyBuf)[:copyBuf]
	defer bufpool.Put(buf)
	n, err := eol.CopyCRLF(sp, ctxio.Reader(ctx, src), buf)
	if err != nil {
		return "", fmt.Errorf("read message: %w", err)
	}
	if m.Size >= 0 && n != m.Size {
		return "", fmt.Errorf("read %d bytes of a message declared as %d: %w", n, m.Size, source.ErrSizeMismatch)
	}
	if sp.HasNUL() {
		// go-imap cannot send a literal8 (BINARY APPEND), and a NUL in a
		// plain literal is refused or altered by servers (Dovecot returns
		// it as 0x80).
		return "", fmt.Errorf("message holds NUL bytes, which IMAP cannot carry without BINARY APPEND: %w", sink.ErrRejected)
	}
	if sp.Size() == 0 {
		return "", fmt.Errorf("an empty (0-byte) message cannot be appended over IMAP: %w", sink.ErrRejected)
	}
	if s.gm.on {
		return s.putGmail(ctx, folder, m, sp)
	}
	return s.store(ctx, folder, m, sp)
}

// store appends the spooled message to folder, made if need be.
func (s *Sink) store(ctx context.Context, folder string, m source.Message, sp *spool.Spool) (string, error) {
	if err := s.CreateFolder(ctx, folder); err != nil { // once per folder
		return "", srcimap.Transport(err)
	}
	mailbox, err := s.Mailbox(ctx, folder)
	if err != nil {
		return "", err
	}
	id, err := s.append(ctx, folder, mailbox, m, sp)
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeTryCreate || ie.Code == imap.ResponseCodeNonExistent) {
		// Deleted since we created it (another client): create again. The
		// SELECT for PERMANENTFLAGS says [NONEXISTENT] before APPEND can
		// say [TRYCREATE].
		s.mu.Lock()
		delete(s.created, folder)
		delete(s.perm, mailbox)
		s.mu.Unlock()
		if cerr := s.CreateFolder(ctx, folder); cerr != nil {
			return "", cerr
		}
		id, err = s.append(ctx, folder, mailbox, m, sp)
	}
	return id, srcimap.Transport(classify(err))
}

// classify maps a server's refusal to the planner's classes (RFC 5530 codes).
func classify(err error) error {
	err = srcimap.Refusal(err)
	var ie *imap.Error
	var te *source.TransientError
	if err == nil || !errors.As(err, &ie) || errors.As(err, &te) {
		return err
	}
	switch ie.Code {
	case imap.ResponseCodeTooBig, imap.ResponseCodeLimit:
		return fmt.Errorf("%w: %v", sink.ErrRejected, err)
	case imap.ResponseCodeOverQuota:
		return fmt.Errorf("%w: %v", sink.ErrStop, err)
	}
	return err
}

func (s *Sink) append(ctx context.Context, folder, mailbox string, m source.Message, sp *spool.Spool) (string, error) {
	if a, flags := s.appender(ctx, folder, mailbox, m, sp.Size()); a != nil {
		return s.appendPlus(ctx, a, flags, folder, m, sp)
	}
	body, err := sp.Reader()
	if err != nil {
		return "", err
	}
	cn, err := s.Pool.Get(ctx, mailbox)
	if err != nil {
		return "", err
	}
	// RFC 7889: a message over the server's APPENDLIMIT is refused before
	// its bytes are sent.
	if limit, ok := cn.Client().Caps().AppendLimit(); ok && limit != nil && sp.Size() > int64(*limit) {
		s.Pool.Put(cn, false)
		return "", fmt.Errorf("%d bytes, over the server's APPENDLIMIT of %d: %w", sp.Size(), *limit, sink.ErrRejected)
	}
	flags, err := s.allowedFlags(cn, folder, mailbox, m.Flags)
	if err != nil {
		s.Pool.Put(cn, !isNO(err))
		return "", err
	}
	var cmd *imapclient.AppendCommand
	err = cn.Do(func() error {
		cmd = cn.Client().Append(mailbox, sp.Size(), &imap.AppendOptions{Flags: flags, Time: m.Date})
		_, werr := io.Copy(cmd, ctxio.Reader(ctx, body))
		return errors.Join(werr, cmd.Close())
	})
	if err != nil {
		// The server may take the next command as message bytes
		// (audit #6): this connection is done.
		s.Pool.Put(cn, true)
		return "", fmt.Errorf("append to %q: %w", folder, err)
	}
	// The whole message is sent: the connection goes on to the next
	// APPEND while the server stores this one, so a message costs one
	// round trip instead of two (go-imap waits for the continuation of
	// every literal over 4 KB). A broken connection fails every command
	// on it, and the pool no longer hands it out.
	done := cn.Awaiting()
	s.Pool.Put(cn, false)
	data, err := cmd.Wait()
	done()
	if err != nil {
		return "", fmt.Errorf("append to %q: %w", folder, err)
	}
	if data == nil || data.UID == 0 {
		return "", nil // no UIDPLUS: the copy has no ID we know
	}
	return srcimap.MessageID(data.UIDValidity, data.UID), nil
}

// allowedFlags keeps system flags always (a server ignores one it cannot
// keep, and some, go-imap's memserver among them, list only \* in
// PERMANENTFLAGS), keywords when PERMANENTFLAGS allows them (\*, or listed;
// no PERMANENTFLAGS means all flags are permanent, RFC 3501 §7.1), and drops
// keywords that are not valid atoms: go-imap closes the connection on them
// (library audit §1.3).
func (s *Sink) allowedFlags(cn *srcimap.Conn, folder, mailbox string, flags []string) ([]imap.Flag, error) {
	s.mu.Lock()
	perm, ok := s.perm[mailbox]
	s.mu.Unlock()
	if !ok {
		sel, err := cn.Select(mailbox, false)
		if err != nil {
			return nil, fmt.Errorf("select %q: %w", folder, err)
		}
		perm = sel.PermanentFlags
		s.mu.Lock()
		s.perm[mailbox] = perm
		s.mu.Unlock()
	}
	return s.keepFlags(folder, perm, flags), nil
}

// keepFlags is allowedFlags once PERMANENTFLAGS is known.
func (s *Sink) keepFlags(folder string, perm []imap.Flag, flags []string) []imap.Flag {
	anyKeyword := false
	for _, p := range perm {
		if p == imap.FlagWildcard {
			anyKeyword = true
		}
	}
	var out []imap.Flag
	for _, f := range source.NormalizeFlags(flags) {
		if !validAtom(f) {
			s.Cfg.Log.Warn("keyword not stored: not a valid IMAP atom", "folder", folder, "keyword", f)
			continue
		}
		allowed := anyKeyword || strings.HasPrefix(f, `\`)
		for _, p := range perm {
			if strings.EqualFold(string(p), f) {
				allowed = true
			}
		}
		if !allowed && len(perm) > 0 {
			s.Cfg.Log.Warn("flag not stored: the folder does not allow it", "folder", folder, "flag", f)
			continue
		}
		out = append(out, imap.Flag(f))
	}
	return out
}

// validAtom reports whether f can be sent as a flag (RFC 3501 flag-keyword
// is an atom; system flags start with one backslash).
func validAtom(f string) bool {
	f = strings.TrimPrefix(f, `\`)
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		if !srcimap.AtomChar(f[i]) {
			return false
		}
	}
	return true
}

// SetFlags implements sink.FlagSetter with UID STORE FLAGS.SILENT.
func (s *Sink) SetFlags(ctx context.Context, folder, id string, flags []string) error {
	cn, mailbox, uid, err := s.SelectMessage(ctx, folder, id, false)
	if err != nil {
		return srcimap.Transport(err)
	}
	allowed, err := s.allowedFlags(cn, folder, mailbox, flags)
	if err != nil {
		s.Pool.Put(cn, !isNO(err))
		return srcimap.Transport(err)
	}
	err = cn.Do(func() error {
		return cn.Client().Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: allowed}, nil).Close()
	})
	s.Pool.Put(cn, err != nil && !isNO(err))
	if err != nil {
		return srcimap.Transport(fmt.Errorf("set flags in %q: %w", folder, err))
	}
	return nil
}

var (
	_ sink.Sink       = (*Sink)(nil)
	_ sink.FlagSetter = (*Sink)(nil)
	_ sink.Deleter    = (*Sink)(nil)
	_ sink.Subscriber = (*Sink)(nil)
)

package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/source"
)

// Store is an IMAP account. It implements source.Source.
type Store struct {
	Cfg  Config
	Pool *Pool

	mu     sync.Mutex
	ns     *namespace
	closed bool
	ahead  ahead

	// subsListed: the last listing said which folders are subscribed
	// (SubscriptionsListed).
	subsListed atomic.Bool
	// raw maps folders listed under names go-imap cannot select to
	// those names (rawlist.go).
	raw map[string]string
	// gm is the Gmail view of All Mail, when in force (gmail.go), and
	// share the bodies of its messages listed in several folders
	// (gmailshare.go).
	gm    *gmailView
	share bodyShare
	// keywordsLogged: labels whose keyword was logged (gmailkeywords.go)
	keywordsLogged map[string]bool
	// unwatch stops the watch on Open's context (see netx.Live).
	unwatch func() bool
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// DefaultConns is the number of connections a store opens at most unless
// Config.Conns says otherwise.
const DefaultConns = 4

// Open connects to the server and logs in once, so a wrong password or
// certificate is reported before any work starts.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = DefaultConns
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{Cfg: cfg}
	s.Pool = newPool(&s.Cfg)
	// Open's context is the run's: once it is cancelled, every wait on
	// the server ends now, not when the server answers or times out.
	s.unwatch = context.AfterFunc(ctx, s.Pool.live.Abort)
	c, err := netx.Retry(ctx, 4, func() (*Conn, error) { return s.Pool.Get(ctx, "") })
	if err != nil {
		s.unwatch()
		return nil, err
	}
	s.Pool.Put(c, false)
	return s, nil
}

// Close implements source.Source.
func (s *Store) Close() error {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		s.unwatch()
		s.Pool.closeAll()
	}
	return nil
}

const maxHeaderField = 64 << 10

func isServerAnswer(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}

// MessageID builds a source.Message ID from UIDVALIDITY and UID: a message
// keeps it for as long as the server keeps both.
func MessageID(uidValidity uint32, uid imap.UID) string {
	return strconv.FormatUint(uint64(uidValidity), 10) + "/" + strconv.FormatUint(uint64(uid), 10)
}

// ErrBadID: a message ID this package did not make.
var ErrBadID = errors.New("not an IMAP message ID")

// ParseID splits an ID made by MessageID.
func ParseID(id string) (uidValidity uint32, uid imap.UID, err error) {
	a, b, ok := strings.Cut(id, "/")
	v, err1 := strconv.ParseUint(a, 10, 32)
	u, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || u == 0 {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return uint32(v), imap.UID(u), nil
}

// List implements source.Source. It fetches, for all messages at once, the
// UID, flags, INTERNALDATE, size and Message-ID header, never a body, and
// never marks anything read (EXAMINE, BODY.PEEK).
func (s *Store) List(ctx context.Context, folder string, fn func(source.Message) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return err
	}
	msgs, err := s.list(cn, folder, mailbox)
	s.Pool.Put(cn, err != nil && !errors.Is(err, source.ErrFolderNotFound))
	if err != nil {
		return Transport(refused(err))
	}
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		if msgs, err = s.keepArchived(ctx, gm, msgs); err != nil {
			return err
		}
	} else if gm != nil {
		if err := s.shareFolder(ctx, gm, folder, msgs); err != nil {
			return err
		}
	}
	return source.Emit(ctx, msgs, fn)
}

// conn takes a pooled connection for folder (preferring one that has its
// mailbox selected) and returns it with the mailbox's server name. The
// caller puts it back.
func (s *Store) conn(ctx context.Context, folder string) (*Conn, string, error) {
	mailbox, err := s.Mailbox(ctx, folder)
	if err != nil {
		return nil, "", err
	}
	cn, err := s.Pool.Get(ctx, mailbox)
	if err != nil {
		return nil, "", err
	}
	return cn, mailbox, nil
}

func (s *Store) list(cn *Conn, folder, mailbox string) ([]source.Message, error) {
	var msgs []source.Message
	var sel *imap.SelectData
	var selErr error
	err := cn.Do(func() error {
		// Always a fresh EXAMINE: a pooled connection's message count is
		// stale once another connection appended. The FETCH goes with it
		// rather than a round trip after: the server answers in order, so
		// it lists the mailbox just examined, or fails if that failed (no
		// mailbox selected) or is empty (no message 1), and is then
		// drained and its answer set aside.
		selCmd := cn.c.Select(mailbox, &imap.SelectOptions{ReadOnly: true})
		// By sequence number with the UID as an item: a UID FETCH whose
		// response puts UID after the literal is dropped by go-imap
		// (audit #4). The count is checked against EXISTS below.
		fc := cn.c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}},
		})
		sel, selErr = selCmd.Wait()
		cn.selected(mailbox, true, sel, selErr)
		if selErr != nil || sel.NumMessages == 0 {
			fc.Close()
			return nil
		}
		for md := fc.Next(); md != nil; md = fc.Next() {
			m := source.Message{Folder: folder, Size: -1, MessageIDKnown: true}
			var uid imap.UID
			for it := md.Next(); it != nil; it = md.Next() {
				switch it := it.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataFlags:
					m.Flags = flagStrings(it.Flags)
				case imapclient.FetchItemDataInternalDate:
					m.Date = it.Time
				case imapclient.FetchItemDataRFC822Size:
					m.Size = it.Size
				case imapclient.FetchItemDataBodySection:
					// The Message-ID field, asked for alone: a server that
					// answers with more is read no further than this.
					b, err := io.ReadAll(io.LimitReader(it.Literal, maxHeaderField))
					if err != nil {
						return err
					}
					m.MessageID, _, _ = header.MessageID(bytes.NewReader(b))
				}
			}
			if uid == 0 {
				return fmt.Errorf("message %d came without its UID", md.SeqNum)
			}
			m.ID = MessageID(sel.UIDValidity, uid)
			msgs = append(msgs, m)
		}
		return fc.Close()
	})
	if selErr != nil {
		var ie *imap.Error
		if errors.As(selErr, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, fmt.Errorf("folder %q: %w (%v)", folder, source.ErrFolderNotFound, selErr)
		}
		return nil, fmt.Errorf("folder %q: select: %w", folder, selErr)
	}
	if err != nil {
		return nil, fmt.Errorf("folder %q: fetch: %w", folder, err)
	}
	if uint32(len(msgs)) < sel.NumMessages {
		return nil, fmt.Errorf("folder %q: the server announced %d messages and returned %d", folder, sel.NumMessages, len(msgs))
	}
	return msgs, nil
}

func flagStrings(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		out = append(out, string(f))
	}
	return source.NormalizeFlags(out)
}

var _ source.Source = (*Store)(nil)

// RoundTrip is how far away the server is: a NOOP's round trip, timed
// when the folders were first listed or a connection first taken from
// go-imap (0 before). A NOOP is the command a
// server answers quickest (loopback Dovecot: well under a millisecond); a
// dial or a login would also time a process starting or a password being
// checked.
func (s *Store) RoundTrip() time.Duration { return s.Pool.roundTrip() }

// SubscriptionsListed reports whether the last Folders said which folders
// are subscribed (LIST-EXTENDED): without it, no folder is marked
// Unsubscribed, which then says nothing.
func (s *Store) SubscriptionsListed() bool { return s.subsListed.Load() }

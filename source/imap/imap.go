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
	// raw maps folders listed under names go-imap cannot select to
	// those names (rawlist.go).
	raw map[string]string
	// gm is the Gmail view of All Mail, when in force (gmail.go).
	gm *gmailView
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

// namespace is how this server spells folder names: a prefix for the
// personal namespace ("INBOX." on Courier-style servers) and a hierarchy
// delimiter.
type namespace struct {
	prefix string
	delim  rune
}

func (s *Store) namespace(ctx context.Context, cn *Conn) (*namespace, error) {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns != nil {
		return ns, nil
	}
	ns = &namespace{delim: '/'}
	err := cn.Do(func() error {
		if cn.c.Caps().Has(imap.CapNamespace) {
			data, err := cn.c.Namespace().Wait()
			if err != nil {
				return err
			}
			if len(data.Personal) > 0 {
				ns.prefix, ns.delim = data.Personal[0].Prefix, data.Personal[0].Delim
			}
			if ns.delim != 0 {
				return nil
			}
		}
		// No NAMESPACE: LIST "" "" gives the delimiter.
		l, err := cn.c.List("", "", nil).Collect()
		if err != nil {
			return err
		}
		if len(l) > 0 && l[0].Delim != 0 {
			ns.delim = l[0].Delim
		}
		return nil
	})
	if err != nil {
		return nil, Transport(fmt.Errorf("namespace: %w", err))
	}
	if ns.delim == 0 {
		ns.delim = '/'
	}
	s.mu.Lock()
	s.ns = ns
	s.mu.Unlock()
	return ns, nil
}

// ErrBadFolderName is wrapped when a folder name cannot be said on this
// server.
var ErrBadFolderName = errors.New("folder name cannot be stored on this server")

// ServerName translates a "/"-separated folder name to this server's.
func (ns *namespace) ServerName(folder string) (string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX", nil
	}
	parts := strings.Split(folder, "/")
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: %q has an empty part", ErrBadFolderName, folder)
		}
		if ns.delim != '/' && strings.ContainsRune(p, ns.delim) {
			return "", fmt.Errorf("%w: %q contains %q, this server's hierarchy delimiter", ErrBadFolderName, folder, ns.delim)
		}
		if strings.ContainsAny(p, "\r\n\x00*%") {
			return "", fmt.Errorf("%w: %q has a character IMAP cannot carry in a name", ErrBadFolderName, folder)
		}
	}
	return ns.prefix + strings.Join(parts, string(ns.delim)), nil
}

// FolderName translates this server's folder name to the "/"-separated
// form; ok is false when it cannot be (a "/" inside a part).
func (ns *namespace) FolderName(server string) (string, bool) {
	if strings.EqualFold(server, "INBOX") {
		return "INBOX", true
	}
	name := strings.TrimPrefix(server, ns.prefix)
	if ns.delim == '/' {
		return name, true
	}
	if strings.Contains(name, "/") {
		return "", false
	}
	return strings.ReplaceAll(name, string(ns.delim), "/"), true
}

// Mailbox returns the server's name for folder.
func (s *Store) Mailbox(ctx context.Context, folder string) (string, error) {
	if err := s.unselectable(folder); err != nil {
		return "", err
	}
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		folder = gm.allMail
	}
	ns, err := s.Namespace(ctx)
	if err != nil {
		return "", err
	}
	return ns.ServerName(folder)
}

// Namespace returns the server's naming, connecting if needed.
func (s *Store) Namespace(ctx context.Context) (*namespace, error) {
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return nil, err
	}
	ns, err := s.namespace(ctx, cn)
	s.Pool.Put(cn, err != nil)
	return ns, err
}

// Folders implements source.Source. \Noselect and \NonExistent folders are
// left out; special-use roles (RFC 6154) are reported.
func (s *Store) Folders(ctx context.Context) ([]source.Folder, error) {
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return nil, err
	}
	ns, err := s.namespace(ctx, cn)
	if err != nil {
		s.Pool.Put(cn, true)
		return nil, err
	}
	var list []*imap.ListData
	var caps imap.CapSet
	subs := false // whether LIST reports subscriptions
	err = cn.Do(func() error {
		caps = cn.c.Caps()
		opts := &imap.ListOptions{}
		if cn.c.Caps().Has(imap.CapSpecialUse) {
			opts.ReturnSpecialUse = true
		}
		if cn.c.Caps().Has(imap.CapListExtended) {
			opts.ReturnSubscribed = true
			subs = true
		}
		var err error
		list, err = cn.c.List("", "*", opts).Collect()
		return err
	})
	s.Pool.Put(cn, err != nil)
	if badUTF7(err) {
		return s.rawFolders(ctx, ns)
	}
	if err != nil {
		return nil, Transport(fmt.Errorf("list folders: %w", err))
	}
	s.mu.Lock()
	s.raw = nil
	s.mu.Unlock()
	var out []source.Folder
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name, ok := ns.FolderName(l.Mailbox)
		if !ok {
			s.Cfg.Log.Warn("folder skipped: its name holds '/', which mailferry uses as the hierarchy separator", "folder", l.Mailbox)
			continue
		}
		out = append(out, listedFolder(name, l.Attrs, subs))
	}
	return s.gmailFolders(out, caps), nil
}

// listedFolder is the folder name of a LIST answer with attrs: its
// special-use role (RFC 6154), and whether it is unsubscribed when the
// answer says (subs).
func listedFolder(name string, attrs []imap.MailboxAttr, subs bool) source.Folder {
	f := source.Folder{Name: name, Unsubscribed: subs && !hasAttr(attrs, imap.MailboxAttrSubscribed)}
	for _, a := range attrs {
		switch a {
		case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
			imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, mailboxAttrImportant:
			f.SpecialUse = string(a)
		}
	}
	return f
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// maxHeaderField bounds the header field a listing reads per message.
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
		return Transport(err)
	}
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		if msgs, err = s.keepArchived(ctx, gm, msgs); err != nil {
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
	// Always a fresh SELECT: a pooled connection's message count is stale
	// once another connection appended.
	cn.sel = nil
	sel, err := cn.Select(mailbox, true)
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, fmt.Errorf("folder %q: %w (%v)", folder, source.ErrFolderNotFound, err)
		}
		return nil, fmt.Errorf("folder %q: select: %w", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	var msgs []source.Message
	err = cn.Do(func() error {
		// By sequence number with the UID as an item: a UID FETCH whose
		// response puts UID after the literal is dropped by go-imap
		// (audit #4). The count is checked against EXISTS below.
		fc := cn.c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}},
		})
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

// Open implements source.Source: it streams BODY.PEEK[] from the server,
// unless the message was read ahead (Prefetch). The connection is the
// reader's until Close.
func (s *Store) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	if r, ok := s.ahead.take(ctx, m); ok {
		return r, nil
	}
	cn, _, uid, err := s.SelectMessage(ctx, m.Folder, m.ID, true)
	if err != nil {
		return nil, Transport(err)
	}
	cn.dc.Begin()
	fc := cn.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	r := &bodyReader{s: s, cn: cn, fc: fc, folder: m.Folder, id: m.ID, uid: uid}
	if err := r.start(); err != nil {
		r.Close()
		return nil, Transport(err)
	}
	return r, nil
}

// SelectMessage takes a connection with the folder of message id selected
// (readOnly: EXAMINE) and returns it with the folder's server name and the
// message's UID. The caller puts the connection back. A folder whose
// UIDVALIDITY changed no longer has the message: ErrMessageNotFound.
func (s *Store) SelectMessage(ctx context.Context, folder, id string, readOnly bool) (*Conn, string, imap.UID, error) {
	uidValidity, uid, err := ParseID(id)
	if err != nil {
		return nil, "", 0, err
	}
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return nil, "", 0, err
	}
	sel, err := cn.Select(mailbox, readOnly)
	if err == nil && sel.UIDNext != 0 && uid >= sel.UIDNext {
		// Appended (by another connection) since this one selected the
		// mailbox: to this session the message does not exist yet, and a
		// UID STORE or FETCH would quietly do nothing. Select afresh.
		cn.sel = nil
		sel, err = cn.Select(mailbox, readOnly)
	}
	if err != nil {
		s.Pool.Put(cn, !isServerAnswer(err))
		return nil, "", 0, fmt.Errorf("folder %q: select: %w", folder, err)
	}
	if sel.UIDValidity != uidValidity {
		s.Pool.Put(cn, false)
		return nil, "", 0, fmt.Errorf("folder %q message %s: UIDVALIDITY is now %d: %w", folder, id, sel.UIDValidity, source.ErrMessageNotFound)
	}
	return cn, mailbox, uid, nil
}

// bodyReader streams one message literal. It fails unless exactly the
// announced number of bytes arrive (a literal cut short by the peer reads
// as a clean EOF in go-imap: audit #5).
type bodyReader struct {
	s          *Store
	cn         *Conn
	fc         *imapclient.FetchCommand
	md         *imapclient.FetchMessageData
	lit        imap.LiteralReader
	n          int64
	folder, id string
	uid        imap.UID
	err        error
	closed     bool
}

func (r *bodyReader) start() error {
	r.md = r.fc.Next()
	if r.md == nil {
		if err := r.fc.Close(); err != nil {
			r.err = err
			return fmt.Errorf("folder %q message %s: fetch: %w", r.folder, r.id, err)
		}
		// No response: expunged, or a response go-imap dropped because the
		// server sent UID after the literal (audit #4).
		return r.gone("the server answered the FETCH in a form go-imap drops (UID after the body)")
	}
	for it := r.md.Next(); it != nil; it = r.md.Next() {
		if b, ok := it.(imapclient.FetchItemDataBodySection); ok {
			if b.Literal == nil {
				// BODY[] NIL: Dovecot's answer for a message another
				// session expunged that this one has not been told of.
				if err := r.fc.Close(); err != nil {
					r.err = err
					return fmt.Errorf("folder %q message %s: fetch: %w", r.folder, r.id, err)
				}
				return r.gone("the server sent NIL for its body")
			}
			r.lit = b.Literal
			return nil
		}
	}
	r.err = errors.New("no body in the response")
	return fmt.Errorf("folder %q message %s: the server sent no body", r.folder, r.id)
}

// gone is for a FETCH that cleanly gave no body: the message is reported
// missing (ErrMessageNotFound) only if the server's search no longer finds
// it; a message that still exists must not pass as gone.
func (r *bodyReader) gone(why string) error {
	data, err := r.cn.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(r.uid)}}, nil).Wait()
	if err != nil {
		r.err = err
		return fmt.Errorf("folder %q message %s: search: %w", r.folder, r.id, err)
	}
	r.lit = emptyLiteral{} // a clean answer: the connection stays usable
	if len(data.AllUIDs()) > 0 {
		r.err = errors.New("no body")
		return fmt.Errorf("folder %q message %s: %s; message not read", r.folder, r.id, why)
	}
	return fmt.Errorf("folder %q message %s: %w", r.folder, r.id, source.ErrMessageNotFound)
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	k, err := r.lit.Read(p)
	r.n += int64(k)
	if errors.Is(err, io.EOF) && r.n != r.lit.Size() {
		r.err = &source.TransientError{Err: fmt.Errorf("folder %q message %s: body cut short at %d of %d bytes: %w", r.folder, r.id, r.n, r.lit.Size(), io.ErrUnexpectedEOF)}
		return k, r.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = Transport(err)
		return k, r.err
	}
	return k, err
}

// Close finishes the command; the connection goes back to the pool only if
// everything was read cleanly.
func (r *bodyReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	defer r.cn.dc.End()
	complete := r.lit != nil && r.n == r.lit.Size() && r.err == nil
	if !complete {
		// Unread literal bytes would have to cross the network to free the
		// connection; dropping it is cheaper and certainly clean. The
		// command is drained in the background so go-imap's reader exits.
		r.s.Pool.Put(r.cn, true)
		go func() {
			if r.lit != nil {
				io.Copy(io.Discard, r.lit)
			}
			r.fc.Close()
		}()
		return r.err
	}
	err := r.fc.Close()
	r.s.Pool.Put(r.cn, err != nil)
	if err != nil {
		// The body came whole but the command's end did not (a dropped
		// connection, most likely): transient, so the planner looks at the
		// destination before it tries again.
		return Transport(fmt.Errorf("folder %q message %s: fetch: %w", r.folder, r.id, err))
	}
	return nil
}

type emptyLiteral struct{}

func (emptyLiteral) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyLiteral) Size() int64              { return 0 }

var _ source.Source = (*Store)(nil)

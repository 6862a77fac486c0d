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
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gopop3 "github.com/knadh/go-pop3"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/source"
)

// TLS modes, as in package endpoint.
const (
	TLSImplicit = "implicit"
	TLSStart    = "starttls"
	TLSNone     = "none"
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
}

var (
	ErrAuth  = errors.New("login rejected")
	ErrNoTLS = errors.New("server does not offer STLS")
)

// Store is a POP3 mailbox: one folder. It implements source.Source,
// source.Describer and source.Deleter.
type Store struct {
	cfg Config

	// mu is held for the whole of each command, and by an open message
	// reader until it is closed: a POP3 session is one conversation.
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
	// that follows; keptOrder is oldest first (see Describe).
	kept      map[string][]byte
	keptOrder []string
	keptBytes int64
	// live is the session's socket, closed by a cancelled run (see
	// netx.Live); unwatch stops that watch.
	live    netx.Live
	unwatch func() bool
}

// Describe retrieves a message of at most describeWhole bytes (by LIST)
// whole instead of asking TOP for its header, and keeps it, within
// keptMax bytes, for the Open that follows: a new message is almost
// always copied, and Dovecot spends nearly as long on a TOP as on a RETR.
// Bigger messages still get TOP, so a size filter or a duplicate costs
// no download.
const (
	describeWhole = 1 << 20
	keptMax       = 16 << 20
)

// keep holds body for id's Open, dropping the oldest kept bodies beyond
// keptMax (a message described but not copied: a duplicate, or filtered).
func (s *Store) keep(id string, body []byte) {
	if s.kept == nil {
		s.kept = map[string][]byte{}
	}
	s.take(id)
	s.kept[id] = body
	s.keptOrder = append(s.keptOrder, id)
	s.keptBytes += int64(len(body))
	for s.keptBytes > keptMax && len(s.keptOrder) > 0 {
		s.take(s.keptOrder[0])
		s.keptOrder = s.keptOrder[1:]
	}
	if len(s.keptOrder) > 2*len(s.kept)+64 { // IDs already taken
		s.keptOrder = slices.DeleteFunc(s.keptOrder, func(id string) bool { _, ok := s.kept[id]; return !ok })
	}
}

// take returns and forgets id's kept body.
func (s *Store) take(id string) ([]byte, bool) {
	b, ok := s.kept[id]
	if ok {
		s.keptBytes -= int64(len(b))
		delete(s.kept, id)
	}
	return b, ok
}

type session struct {
	c   *gopop3.Conn
	dc  *netx.DeadlineConn
	br  *bufio.Reader // ours, for RETR and TOP
	raw net.Conn      // what both readers read from (TLS or plain)
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

// safe runs a go-pop3 call, turning its panics on malformed replies (index
// out of range on a short LIST or UIDL line) into errors.
func safe(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed reply from the server (%v)", r)
		}
	}()
	return fn()
}

// session returns the current session, dialling and logging in if needed.
// Message numbers are per session, so a new one re-reads UIDL.
func (s *Store) session(ctx context.Context) (*session, error) {
	if s.sess != nil {
		return s.sess, nil
	}
	d := &dialer{cfg: &s.cfg, ctx: ctx, live: &s.live}
	host, portStr, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	var c *gopop3.Conn
	err = safe(func() error {
		var err error
		c, err = gopop3.New(gopop3.Opt{Host: host, Port: port, Dialer: d}).NewConn()
		return err
	})
	if err != nil {
		if d.sess != nil {
			d.sess.raw.Close()
		}
		return nil, err
	}
	sess := d.sess
	sess.c = c
	if err := s.login(sess, d); err != nil {
		sess.raw.Close()
		return nil, err
	}
	s.sess = sess
	if err := s.index(ctx); err != nil {
		s.drop()
		return nil, err
	}
	return sess, nil
}

func (s *Store) login(sess *session, d *dialer) error {
	var err error
	mech := strings.ToLower(s.cfg.Auth)
	sess.dc.Begin()
	defer sess.dc.End()
	if mech == "" && s.cfg.Token != "" {
		switch {
		case d.sasl["OAUTHBEARER"]:
			mech = "oauthbearer"
		case d.sasl["XOAUTH2"]:
			mech = "xoauth2"
		default:
			return fmt.Errorf("%s: %w: an OAuth2 token was given, but the server lists neither OAUTHBEARER nor XOAUTH2", s.cfg.Addr, ErrAuth)
		}
	}
	switch {
	case mech == "xoauth2" || mech == "oauthbearer":
		var ir []byte
		if mech == "xoauth2" {
			ir = netx.XOAUTH2Response(s.cfg.User, s.cfg.Token)
		} else {
			host, port, _ := net.SplitHostPort(s.cfg.Addr)
			ir = []byte("n,a=" + s.cfg.User + ",\x01host=" + host + "\x01port=" + port + "\x01auth=Bearer " + s.cfg.Token + "\x01\x01")
		}
		err = safe(func() error {
			_, err := sess.c.Cmd("AUTH "+strings.ToUpper(mech), false, base64.StdEncoding.EncodeToString(ir))
			return err
		})
	case mech == "plain" || (mech == "" && d.sasl["PLAIN"]):
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + s.cfg.User + "\x00" + s.cfg.Password))
		err = safe(func() error { _, err := sess.c.Cmd("AUTH PLAIN", false, ir); return err })
	case mech == "apop" || (mech == "" && d.apop != ""):
		if d.apop == "" {
			return fmt.Errorf("%s: the server offers no APOP", s.cfg.Addr)
		}
		sum := md5.Sum([]byte(d.apop + s.cfg.Password))
		err = safe(func() error { _, err := sess.c.Cmd("APOP", false, s.cfg.User, hex.EncodeToString(sum[:])); return err })
	case mech == "user" || mech == "":
		err = safe(func() error { return sess.c.Auth(s.cfg.User, s.cfg.Password) })
	default:
		return fmt.Errorf("unknown auth mechanism %q (want plain, apop, user, xoauth2 or oauthbearer)", s.cfg.Auth)
	}
	if err != nil {
		return fmt.Errorf("log in to %s as %q: %w: %v", s.cfg.Addr, s.cfg.User, ErrAuth, err)
	}
	return nil
}

// index maps UIDLs to message numbers for this session.
func (s *Store) index(ctx context.Context) error {
	sess := s.sess
	sess.dc.Begin()
	defer sess.dc.End()
	var ids []gopop3.MessageID
	err := safe(func() error {
		var err error
		ids, err = sess.c.Uidl(0)
		return err
	})
	s.byID = map[string]int{}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "-ERR") && !isServerErr(err) {
			return fmt.Errorf("UIDL: %w", err)
		}
		// No UIDL: messages are keyed by content, which means reading each
		// one on every run. Said once, not hidden.
		s.noUIDL = true
		s.warn.Do(func() {
			s.cfg.Log.Warn("the server has no UIDL: messages are keyed by content hash, so every run downloads every message", "server", s.cfg.Addr)
		})
		return s.listSizes()
	}
	if err := s.listSizes(); err != nil {
		return err
	}
	// A UIDL the server gives to more than one message (RFC 1939 says it
	// must not, and some servers do) cannot tell them apart: those are
	// keyed by UIDL and content, so each is copied and none is lost.
	count := map[string]int{}
	for _, m := range ids {
		count[m.UID]++
	}
	twins := map[string]int{}
	for _, m := range ids {
		if count[m.UID] == 1 {
			s.byID[m.UID] = m.ID
			continue
		}
		h := sha256.New()
		if err := s.read(ctx, "RETR", m.ID, h); err != nil {
			return fmt.Errorf("message %d (UIDL %q given to %d messages): %w", m.ID, m.UID, count[m.UID], err)
		}
		id := m.UID + "#sha256:" + hex.EncodeToString(h.Sum(nil))
		if twins[id]++; twins[id] > 1 {
			id += "#" + strconv.Itoa(twins[id]) // identical twins stay two messages
		}
		s.byID[id] = m.ID
	}
	for uid, c := range count {
		if c > 1 {
			s.cfg.Log.Warn("the server gives one UIDL to several messages; they are told apart by content", "uidl", uid, "messages", c)
		}
	}
	return nil
}

// listSizes reads LIST, whose sizes let trailerReader undo the line break a
// server adds to a message that lacks one. A server without a usable LIST
// loses only that.
func (s *Store) listSizes() error {
	s.sizes = map[int]int64{}
	var ls []gopop3.MessageID
	if err := safe(func() error { var err error; ls, err = s.sess.c.List(0); return err }); err != nil {
		if isServerErr(err) {
			return nil
		}
		return fmt.Errorf("LIST: %w", err)
	}
	for _, m := range ls {
		s.sizes[m.ID] = int64(m.Size)
	}
	return nil
}

func (s *Store) listSize(n int) int64 {
	if sz, ok := s.sizes[n]; ok {
		return sz
	}
	return -1
}

// isServerErr: go-pop3 returns "-ERR" replies as plain errors whose text
// is the server's, without the status.
func isServerErr(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)
}

// drop forgets the session after an error: the connection is closed
// without QUIT, so nothing marked for deletion is deleted.
func (s *Store) drop() {
	if s.sess != nil {
		s.sess.raw.Close()
		s.sess = nil
	}
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

// peekLines asks TOP for more body lines than any message has: the whole
// message, without the \Seen flag that servers such as Dovecot set on
// RETR (RFC 1939 lets a server mark what RETR retrieved; TOP marks
// nothing).
const peekLines = "999999999"

// read sends "CMD n [args]" and copies the multi-line response body to w.
//
// A RETR is first tried as a TOP of every line, so that a backup leaves
// the mailbox as it was. TOP is only believed when it yields exactly the
// size LIST gave; a server without TOP, or whose TOP stops short, is read
// with RETR from then on (said once).
func (s *Store) read(ctx context.Context, cmd string, n int, w io.Writer, args ...string) error {
	if rw, ok := w.(interface{ Reset() }); ok && cmd == "RETR" && !s.noPeek && s.listSize(n) >= 0 {
		cw := &countWriter{w: w}
		err := s.readAs(ctx, "TOP", n, cw, s.listSize(n), peekLines)
		var se *serverError
		switch {
		case err == nil && cw.n == s.listSize(n):
			return nil
		case err == nil || errors.As(err, &se):
			s.noPeek = true
			s.peekWarn.Do(func() {
				s.cfg.Log.Warn("the server's TOP does not return whole messages: reading with RETR, which some servers (Dovecot among them) count as reading a message and mark \\Seen", "server", s.cfg.Addr)
			})
			rw.Reset()
		default:
			return err
		}
	}
	listSize := int64(-1)
	if cmd == "RETR" {
		listSize = s.listSize(n)
	}
	return s.readAs(ctx, cmd, n, w, listSize, args...)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}

// readAs sends the command and copies its body to w; a whole message
// (listSize >= 0) loses the line break a server adds to one that lacks it.
func (s *Store) readAs(ctx context.Context, cmd string, n int, w io.Writer, listSize int64, args ...string) error {
	sess, err := s.session(ctx)
	if err != nil {
		return err
	}
	r, err := s.start(sess, cmd, n, args...)
	if err != nil {
		return err
	}
	var body io.Reader = r
	if listSize >= 0 || cmd == "RETR" {
		body = &trailerReader{r: r, listSize: listSize}
	}
	_, err = io.Copy(w, body)
	sess.dc.End()
	if err != nil {
		s.drop()
		return fmt.Errorf("%s %d: %w", cmd, n, err)
	}
	return nil
}

// start sends the command and reads its status line; on +OK the returned
// reader yields the body. The deadline is active until the caller ends it.
func (s *Store) start(sess *session, cmd string, n int, args ...string) (*dotReader, error) {
	sess.dc.Begin()
	line := cmd + " " + strconv.Itoa(n)
	for _, a := range args {
		line += " " + a
	}
	if err := sess.c.Send(line); err != nil {
		sess.dc.End()
		s.drop()
		return nil, fmt.Errorf("%s %d: %w", cmd, n, err)
	}
	status, err := readLine(sess.br)
	if err != nil {
		sess.dc.End()
		s.drop()
		return nil, fmt.Errorf("%s %d: %w", cmd, n, err)
	}
	if !strings.HasPrefix(status, "+OK") {
		sess.dc.End()
		return nil, fmt.Errorf("%s %d: %w", cmd, n, &serverError{strings.TrimSpace(status)})
	}
	return newDotReader(sess.br), nil
}

type serverError struct{ text string }

func (e *serverError) Error() string { return "server said: " + e.text }

// Describe implements source.Describer with RETR (see describeWhole) or
// TOP n 0: the Message-ID, and the date POP3 lacks, taken from the newest
// Received header, else the Date header, else now (the time of retrieval).
func (s *Store) Describe(ctx context.Context, m *source.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.number(ctx, m)
	if err != nil {
		return err
	}
	if size := s.listSize(n); size >= 0 && size <= describeWhole {
		// Held in memory, so bounded by what LIST said: twice that and
		// 64 KB (a server that counts LF line ends where it sends CRLF
		// still fits), beyond which the message fails. A server cannot
		// make a small message huge.
		msg := &capBuffer{max: 2*size + 64<<10}
		if err := s.read(ctx, "RETR", n, msg); err != nil {
			return retrError(m, err)
		}
		m.MessageID, _, _ = header.MessageID(bytes.NewReader(msg.Bytes()))
		m.MessageIDKnown = true
		m.Date = Date(msg.Bytes(), time.Now())
		s.keep(m.ID, msg.Bytes())
		return nil
	}
	var hdr bytes.Buffer
	if err := s.read(ctx, "TOP", n, &hdr, "0"); err != nil {
		var se *serverError
		if errors.As(err, &se) {
			// No TOP (it is optional): the planner reads the header with
			// RETR instead, and the date is the time of retrieval.
			m.Date = time.Now()
			return nil
		}
		return err
	}
	m.MessageID, m.MessageIDKnown, _ = header.MessageID(bytes.NewReader(hdr.Bytes()))
	m.MessageIDKnown = true
	m.Date = Date(hdr.Bytes(), time.Now())
	return nil
}

var receivedDate = regexp.MustCompile(`;\s*([^;]+)$`)

// Date returns the received date of a message header: the newest date of
// its Received fields, else its Date field, else fallback.
func Date(hdr []byte, fallback time.Time) time.Time {
	var newest, date time.Time
	header.Scan(bytes.NewReader(hdr), func(name, v string) bool {
		switch strings.ToLower(name) {
		case "received":
			if m := receivedDate.FindStringSubmatch(v); m != nil {
				if t, err := mail.ParseDate(strings.TrimSpace(m[1])); err == nil && t.After(newest) {
					newest = t
				}
			}
		case "date":
			if t, err := mail.ParseDate(v); err == nil && date.IsZero() {
				date = t
			}
		}
		return true
	})
	switch {
	case !newest.IsZero():
		return newest
	case !date.IsZero():
		return date
	}
	return fallback
}

// number finds m's message number in the current session.
func (s *Store) number(ctx context.Context, m *source.Message) (int, error) {
	if _, err := s.session(ctx); err != nil {
		return 0, err
	}
	n, ok := s.byID[m.ID]
	if !ok {
		return 0, fmt.Errorf("message %s: %w", m.ID, source.ErrMessageNotFound)
	}
	return n, nil
}

// Open implements source.Source: RETR. The message is read into a spool
// (memory up to spool.MemLimit, then an unlinked temporary file) and the
// session released at once, so the next RETR overlaps this message's write
// and fsync at the destination: a POP3 session is one conversation.
func (s *Store) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.take(m.ID); ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	n, err := s.number(ctx, &m)
	if err != nil {
		return nil, err
	}
	sp := &spool.Spool{}
	if err := s.read(ctx, "RETR", n, sp); err != nil {
		sp.Close()
		return nil, retrError(&m, err)
	}
	r, err := sp.Reader()
	if err != nil {
		sp.Close()
		return nil, err
	}
	return spoolReader{r, sp}, nil
}

// retrError says what a failed RETR of m means: the server's refusal
// stays as it is; anything else broke the session and is worth a retry.
func retrError(m *source.Message, err error) error {
	var se *serverError
	if errors.As(err, &se) {
		return fmt.Errorf("message %s: %w", m.ID, err)
	}
	return &source.TransientError{Err: fmt.Errorf("message %s: %w", m.ID, err)}
}

type spoolReader struct {
	io.Reader
	sp *spool.Spool
}

func (r spoolReader) Close() error { return r.sp.Close() }

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

// dialer is go-pop3's Dialer: it connects, sets up TLS (implicit or STLS),
// reads the greeting and CAPA itself, and hands go-pop3 a connection that
// replays the greeting.
type dialer struct {
	cfg  *Config
	ctx  context.Context
	live *netx.Live
	sess *session
	apop string // the greeting's APOP timestamp
	sasl map[string]bool
	warn sync.Once
}

func (d *dialer) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(d.cfg.Addr)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: d.cfg.InsecureSkipVerify}
	if d.cfg.CAFile != "" {
		pem, err := os.ReadFile(d.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", d.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

var apopStamp = regexp.MustCompile(`<[^<>@\s]+@[^<>\s]+>`)

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	tc, err := d.tlsConfig()
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if raw, err = d.live.Track(raw); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	dc := netx.NewDeadlineConn(raw, d.cfg.Timeout)
	dc.Begin()
	defer dc.End()
	var conn net.Conn = dc
	if d.cfg.TLS == TLSImplicit {
		t := tls.Client(dc, tc)
		if err := t.HandshakeContext(d.ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = t
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	greeting, err := readLine(br)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(greeting, "+OK") {
		raw.Close()
		return nil, fmt.Errorf("greeting from %s is not +OK: %q", addr, strings.TrimSpace(greeting))
	}
	caps, err := capa(conn, br)
	if err != nil {
		raw.Close()
		return nil, err
	}
	switch d.cfg.TLS {
	case TLSStart:
		if !caps["STLS"] {
			raw.Close()
			return nil, fmt.Errorf("%s: %w; use pop3s://, or ?tls=none on a trusted loopback", addr, ErrNoTLS)
		}
		if _, err := io.WriteString(conn, "STLS\r\n"); err != nil {
			raw.Close()
			return nil, err
		}
		if line, err := readLine(br); err != nil || !strings.HasPrefix(line, "+OK") {
			raw.Close()
			return nil, fmt.Errorf("%s: STLS refused: %q %v", addr, strings.TrimSpace(line), err)
		}
		t := tls.Client(dc, tc)
		if err := t.HandshakeContext(d.ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = t
		br = bufio.NewReaderSize(conn, 64<<10)
		if caps, err = capa(conn, br); err != nil { // capabilities may change after STLS (RFC 2595)
			raw.Close()
			return nil, err
		}
	case TLSNone:
		d.warn.Do(func() {
			d.cfg.Log.Warn("POP3 without TLS (tls=none): the password and mail cross the network in clear", "server", addr)
		})
	}
	d.apop = apopStamp.FindString(greeting)
	d.sasl = map[string]bool{}
	for k := range caps {
		if m, ok := strings.CutPrefix(k, "SASL "); ok {
			for _, mech := range strings.Fields(m) {
				d.sasl[strings.ToUpper(mech)] = true
			}
		}
	}
	d.sess = &session{dc: dc, br: br, raw: conn}
	return &replayConn{Conn: conn, pre: []byte(greeting)}, nil
}

// Bounds on what a server may send where mailferry holds it in memory:
// a status line (RFC 1939 allows 512 bytes; some servers say more) and
// the CAPA list.
const (
	maxLine = 8 << 10
	maxCapa = 64 << 10
)

// ErrTooLong is wrapped when a server sends more than those bounds.
var ErrTooLong = errors.New("the server sent more than mailferry accepts")

// capBuffer is a bytes.Buffer that refuses to grow past max.
type capBuffer struct {
	bytes.Buffer
	max int64
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if int64(b.Len()+len(p)) > b.max {
		return 0, fmt.Errorf("%w: more than %d bytes, for a message LIST gave as much smaller", source.ErrSizeMismatch, b.max)
	}
	return b.Buffer.Write(p)
}

// readLine reads one line of at most maxLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return "", fmt.Errorf("%w: a line longer than %d bytes", ErrTooLong, maxLine)
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return string(line), err
	}
}

// capa asks for the capabilities (RFC 2449); a server without CAPA has
// none to tell.
func capa(conn net.Conn, br *bufio.Reader) (map[string]bool, error) {
	caps := map[string]bool{}
	if _, err := io.WriteString(conn, "CAPA\r\n"); err != nil {
		return nil, err
	}
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return caps, nil
	}
	var body bytes.Buffer
	if n, err := io.Copy(&body, io.LimitReader(newDotReader(br), maxCapa+1)); err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	} else if n > maxCapa {
		return nil, fmt.Errorf("CAPA: %w: more than %d bytes", ErrTooLong, maxCapa)
	}
	for _, l := range strings.Split(body.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(l), "SASL ") {
			caps["SASL "+strings.ToUpper(l[5:])] = true
		}
		caps[strings.ToUpper(strings.Fields(l)[0])] = true
	}
	return caps, nil
}

// replayConn yields pre before reading from the connection: go-pop3 wants to
// read a greeting the dialer has already consumed.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

var (
	_ source.Source    = (*Store)(nil)
	_ source.Describer = (*Store)(nil)
	_ source.Deleter   = (*Store)(nil)
)

package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/ctxio"
	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

// An appender writes APPENDs into one mailbox over a connection of its
// own, sending each message as a non-synchronizing literal (LITERAL+,
// RFC 7888) right behind its command, so any number are on the wire at
// once and a message costs no round trip. go-imap cannot do this: it waits
// for the server's "+" before every literal over 4 KB even when the server
// offers LITERAL+ (library audit §1.2), one round trip per message. And a
// mailbox written by one session at a time is what servers are fastest at:
// Dovecot serialises writers on the mailbox lock, and sessions taking
// turns at a large mailbox cost it more with every message (measured at
// 50,000 messages: 294 msgs/s with four sessions per mailbox, against
// Dovecot's ~340 with one).
//
// The connection is logged in by go-imap and then taken from it
// (srcimap.Pool.Detached); what is spoken on it is only APPEND, and what the
// server answers is read by one goroutine, so neither side waits on the
// other (the deadlock of audit §0 cannot happen).
type appender struct {
	mailbox string // the server's name
	st      *srcimap.Stream

	wmu sync.Mutex // one command on the wire at a time
	bw  *bufio.Writer

	mu      sync.Mutex
	tag     uint64
	pending []*appendCall // in the order sent, which is the order answered
	err     error         // once set, the connection is done
	used    time.Time

	users int // callers between Sink.appender and doneWith; under Sink.apMu
}

type appendCall struct {
	tag  string
	done chan appendResult
}

type appendResult struct {
	uidValidity uint32
	uid         imap.UID
	err         error
}

// literalPlusMax: bigger messages go through go-imap, which waits for the
// server's go-ahead, so a message the server refuses (over quota) is not
// sent in vain; their transfer dwarfs the round trip anyway.
const literalPlusMax = 1 << 20

func newAppender(mailbox string, st *srcimap.Stream) *appender {
	a := &appender{mailbox: mailbox, st: st, bw: bufio.NewWriterSize(st.Conn, 64<<10), used: time.Now()}
	go a.read()
	return a
}

// broken reports whether the appender can take no more commands.
func (a *appender) broken() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err != nil
}

func (a *appender) lastUsed() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}

// idle reports whether no command awaits an answer.
func (a *appender) idle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending) == 0
}

// append sends one message and waits for the server's answer. A failure
// to send, or a connection lost before the answer, fails this and every
// other command on the connection as transient: the message may or may
// not have been stored, and the planner looks before it tries again.
func (a *appender) append(ctx context.Context, flags []imap.Flag, date time.Time, sp *spool.Spool) (appendResult, error) {
	body, err := sp.Reader()
	if err != nil {
		return appendResult{}, err
	}
	a.wmu.Lock()
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		a.wmu.Unlock()
		return appendResult{}, a.err
	}
	a.tag++
	call := &appendCall{tag: "M" + strconv.FormatUint(a.tag, 10), done: make(chan appendResult, 1)}
	a.pending = append(a.pending, call)
	a.used = time.Now()
	a.mu.Unlock()
	a.st.DC.Begin() // the answer is awaited from now: the timeout runs
	writeAppendCommand(a.bw, call.tag, a.mailbox, flags, date, sp.Size())
	_, err = io.Copy(a.bw, ctxio.Reader(ctx, body))
	if err == nil {
		a.bw.WriteString("\r\n")
		err = a.bw.Flush()
	}
	a.wmu.Unlock()
	if err != nil {
		// Part of a literal may be out: the server would read what comes
		// next as message bytes (audit #6). The connection is done.
		a.fail(fmt.Errorf("send: %w", err))
	}
	select {
	case r := <-call.done:
		return r, r.err
	case <-ctx.Done():
		return appendResult{}, ctx.Err()
	}
}

// writeAppendCommand writes "tag APPEND mailbox (flags) "date" {n+}" and
// its CRLF. Write errors surface at Flush.
func writeAppendCommand(w *bufio.Writer, tag, mailbox string, flags []imap.Flag, date time.Time, size int64) {
	w.WriteString(tag)
	w.WriteString(" APPEND ")
	writeMailbox(w, mailbox)
	if len(flags) > 0 {
		w.WriteString(" (")
		for i, f := range flags {
			if i > 0 {
				w.WriteByte(' ')
			}
			w.WriteString(string(f)) // atoms: checked by allowedFlags
		}
		w.WriteByte(')')
	}
	if !date.IsZero() {
		w.WriteString(` "`)
		w.WriteString(date.Format("_2-Jan-2006 15:04:05 -0700"))
		w.WriteByte('"')
	}
	w.WriteString(" {")
	w.WriteString(strconv.FormatInt(size, 10))
	w.WriteString("+}\r\n")
}

// writeMailbox writes a mailbox name as go-imap does: INBOX as an atom,
// others in modified UTF-7, as a quoted string.
func writeMailbox(w *bufio.Writer, name string) {
	if strings.EqualFold(name, "INBOX") {
		w.WriteString("INBOX")
		return
	}
	w.WriteByte('"')
	for _, c := range []byte(mutf7.Encode(name)) {
		if c == '"' || c == '\\' {
			w.WriteByte('\\')
		}
		w.WriteByte(c)
	}
	w.WriteByte('"')
}

// quotable reports whether a mailbox name can go in a quoted string (no
// control characters); others go through go-imap, which sends a literal.
func quotable(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return false
		}
	}
	return true
}

// read takes the server's answers in order and hands each to its command.
func (a *appender) read() {
	br := bufio.NewReaderSize(a.st.Conn, 16<<10)
	var bye string
	for {
		line, err := readResponse(br)
		if err != nil {
			if bye != "" {
				err = fmt.Errorf("%w (the server said BYE: %s)", err, bye)
			}
			a.fail(fmt.Errorf("read answer: %w", err))
			return
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			// EXISTS, RECENT and the like; BYE explains the end to come.
			if typ, text, _ := strings.Cut(rest, " "); strings.EqualFold(typ, "BYE") {
				bye = text
			}
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		a.mu.Lock()
		var call *appendCall
		if len(a.pending) > 0 && a.pending[0].tag == tag {
			call = a.pending[0]
			a.pending = a.pending[1:]
		}
		a.mu.Unlock()
		if call == nil {
			// "+" (a continuation nobody asked for) or an unknown tag:
			// the conversation is not what we think it is.
			a.fail(fmt.Errorf("unexpected answer %q", truncate(line, 80)))
			return
		}
		a.st.DC.End()
		r, bad := parseTagged(rest)
		if bad {
			// After BAD, whether the server read the literal is not
			// certain: start afresh. The connection is marked done
			// before the caller hears, so its next message takes a new
			// one.
			a.fail(fmt.Errorf("the server answered BAD: %s", r.err))
			call.done <- r
			return
		}
		call.done <- r
	}
}

// readResponse reads one response line without its CRLF. Literals inside
// it (an untagged FETCH of flags may carry one) are skipped, and a line is
// kept to 64 KB: only tagged answers are looked at.
func readResponse(br *bufio.Reader) (string, error) {
	const keep = 64 << 10
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(b) < keep {
			b = append(b, chunk[:min(len(chunk), keep-len(b))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		line := strings.TrimRight(string(b), "\r\n")
		if n, ok := trailingLiteral(line); ok {
			if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return "", err
			}
			b = []byte(line[:strings.LastIndexByte(line, '{')])
			continue
		}
		return line, nil
	}
}

// trailingLiteral reports a line that ends in "{n}": n bytes follow.
func trailingLiteral(line string) (int64, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(line[i+1:len(line)-1], 10, 64)
	return n, err == nil && n >= 0
}

// parseTagged reads "OK [APPENDUID v uid] text", "NO [CODE] text" or
// "BAD text". A NO or BAD becomes an *imap.Error, as go-imap makes it, so
// classify treats both paths alike.
func parseTagged(rest string) (r appendResult, bad bool) {
	typ, text, _ := strings.Cut(rest, " ")
	var code, arg string
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, arg, _ = strings.Cut(text[1:end], " ")
			text = strings.TrimSpace(text[end+1:])
		}
	}
	switch t := imap.StatusResponseType(strings.ToUpper(typ)); t {
	case imap.StatusResponseTypeOK:
		if strings.EqualFold(code, "APPENDUID") {
			v, u, _ := strings.Cut(arg, " ")
			vv, err1 := strconv.ParseUint(v, 10, 32)
			uu, err2 := strconv.ParseUint(u, 10, 32)
			if err1 == nil && err2 == nil {
				r.uidValidity, r.uid = uint32(vv), imap.UID(uu)
			}
		}
		return r, false
	case imap.StatusResponseTypeNo, imap.StatusResponseTypeBad:
		r.err = &imap.Error{Type: t, Code: imap.ResponseCode(strings.ToUpper(code)), Text: text}
		return r, t == imap.StatusResponseTypeBad
	default:
		r.err = fmt.Errorf("unexpected answer %q", truncate(rest, 80))
		return r, true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// fail ends the connection: every command awaiting an answer gets err,
// marked transient.
func (a *appender) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = srcimap.Transport(fmt.Errorf("APPEND connection to %q: %w", a.mailbox, err))
	}
	err, pending := a.err, a.pending
	a.pending = nil
	a.mu.Unlock()
	a.st.Close()
	for _, call := range pending {
		a.st.DC.End()
		call.done <- appendResult{err: err}
	}
}

// close logs out, politely and without waiting, and ends the connection.
// A message still being sent (an interrupted run) is not waited for.
func (a *appender) close() {
	if a.wmu.TryLock() {
		a.bw.WriteString("L LOGOUT\r\n")
		a.bw.Flush()
		a.wmu.Unlock()
	}
	a.fail(errors.New("closed"))
}

// appender returns mailbox's appender, making one when the server offers
// LITERAL+ and a connection can be spared, with m's flags as the mailbox
// keeps them; nil means go-imap's APPEND. The caller gives it back with
// doneWith.
func (s *Sink) appender(ctx context.Context, folder, mailbox string, m source.Message, size int64) (*appender, []imap.Flag) {
	if size > literalPlusMax || !quotable(mailbox) {
		return nil, nil
	}
	s.apMu.Lock()
	defer s.apMu.Unlock()
	if s.noAppender {
		return nil, nil
	}
	a := s.appenders[mailbox]
	if a != nil && a.broken() {
		delete(s.appenders, mailbox)
		a = nil
	}
	if a == nil {
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
		if a.broken() {
			delete(s.appenders, name)
		}
	}
	if len(s.appenders) >= s.Cfg.Conns-1 {
		var lru string
		var last time.Time
		for name, a := range s.appenders {
			if a.users == 0 && a.idle() && (lru == "" || a.lastUsed().Before(last)) {
				lru, last = name, a.lastUsed()
			}
		}
		if lru == "" {
			return nil
		}
		s.appenders[lru].close()
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
		s.Cfg.Log.Debug("no APPEND connection of its own; using the shared ones", "folder", folder, "error", err)
		return nil
	}
	return newAppender(mailbox, st)
}

// appendPlus appends through a.
func (s *Sink) appendPlus(ctx context.Context, a *appender, flags []imap.Flag, folder string, m source.Message, sp *spool.Spool) (string, error) {
	defer s.doneWith(a)
	// RFC 7889: a message over the server's APPENDLIMIT is refused before
	// its bytes are sent.
	if limit, ok := a.st.Caps.AppendLimit(); ok && limit != nil && sp.Size() > int64(*limit) {
		return "", fmt.Errorf("%d bytes, over the server's APPENDLIMIT of %d: %w", sp.Size(), *limit, sink.ErrRejected)
	}
	r, err := a.append(ctx, flags, m.Date, sp)
	if err != nil {
		return "", fmt.Errorf("append to %q: %w", folder, err)
	}
	if r.uid == 0 {
		return "", nil // no UIDPLUS: the copy has no ID we know
	}
	return srcimap.MessageID(r.uidValidity, r.uid), nil
}

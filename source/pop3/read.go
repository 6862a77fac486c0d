package pop3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/source"
)

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
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	if s.kept == nil {
		s.kept = map[string][]byte{}
	}
	if old, ok := s.takeLocked(id); ok {
		bufpool.Put(old)
	}
	s.kept[id] = body
	s.keptOrder = append(s.keptOrder, id)
	s.keptBytes += int64(len(body))
	for s.keptBytes > keptMax && len(s.keptOrder) > 0 {
		if dropped, ok := s.takeLocked(s.keptOrder[0]); ok {
			bufpool.Put(dropped)
		}
		s.keptOrder = s.keptOrder[1:]
	}
	if len(s.keptOrder) > 2*len(s.kept)+64 { // IDs already taken
		s.keptOrder = slices.DeleteFunc(s.keptOrder, func(id string) bool { _, ok := s.kept[id]; return !ok })
	}
}

// take returns and forgets id's kept body.
func (s *Store) take(id string) ([]byte, bool) {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	return s.takeLocked(id)
}

func (s *Store) takeLocked(id string) ([]byte, bool) {
	b, ok := s.kept[id]
	if ok {
		s.keptBytes -= int64(len(b))
		delete(s.kept, id)
	}
	return b, ok
}

// keptBody returns id's kept body, leaving it kept. Only Open takes it
// and only Describe and pipeline, under mu, drop it, so the caller, under
// mu and describing id, may read it.
func (s *Store) keptBody(id string) ([]byte, bool) {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	b, ok := s.kept[id]
	return b, ok
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
	if _, ok := s.keptBody(m.ID); !ok && len(s.ahead) > 0 && !s.noPeek && s.sess != nil && s.sess.pipelining {
		if err := s.pipeline(ctx, n, m.ID); err != nil {
			// The session broke: one at a time, on a new one, whose
			// message numbers are its own.
			s.cfg.Log.Debug("pipelined TOP failed; one at a time", "error", err)
			if n, err = s.number(ctx, m); err != nil {
				return err
			}
		}
	}
	if body, ok := s.keptBody(m.ID); ok { // read ahead: kept for Open
		describeFrom(m, body)
		return nil
	}
	if size := s.listSize(n); size >= 0 && size <= describeWhole {
		// Held in memory, so bounded by what LIST said: twice that and
		// 64 KB (a server that counts LF line ends where it sends CRLF
		// still fits), beyond which the message fails. A server cannot
		// make a small message huge.
		msg := newCapBuffer(size, 2*size+64<<10)
		if err := s.read(ctx, "RETR", n, msg); err != nil {
			bufpool.Put(msg.Bytes())
			return retrError(m, err)
		}
		describeFrom(m, msg.Bytes())
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
	describeFrom(m, hdr.Bytes())
	return nil
}

// describeFrom fills in m's Message-ID and date from its header (or the
// whole message): known, if only to be absent.
func describeFrom(m *source.Message, hdr []byte) {
	m.MessageID, _, _ = header.MessageID(bytes.NewReader(hdr))
	m.MessageIDKnown = true
	m.Date = Date(hdr, time.Now())
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
//
// A body Describe kept is handed over without waiting for the session,
// which the planner may be using to read the next messages ahead.
func (s *Store) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	if b, ok := s.take(m.ID); ok {
		return newKeptReader(b), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.take(m.ID); ok { // kept while we waited
		return newKeptReader(b), nil
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

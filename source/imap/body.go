package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/source"
)

// Open implements source.Source: it streams BODY.PEEK[] from the server,
// unless the message was read ahead (Prefetch). The connection is the
// reader's until Close.
func (s *Store) Open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	body, msgID, shared := s.share.take(m.Folder, m.ID)
	if body != nil {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	r, err := s.open(ctx, m)
	if err != nil || !shared {
		return r, err
	}
	return &keepReader{ReadCloser: r, size: m.Size, keep: func(b []byte) { s.share.keep(msgID, b) }}, nil
}

// open reads a message from the read-ahead or the server.
func (s *Store) open(ctx context.Context, m source.Message) (io.ReadCloser, error) {
	if r, ok := s.ahead.take(ctx, m); ok {
		return r, nil
	}
	cn, _, uid, err := s.SelectMessage(ctx, m.Folder, m.ID, true)
	if err != nil {
		return nil, Transport(refused(err))
	}
	cn.dc.Begin()
	fc := cn.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	r := &bodyReader{s: s, cn: cn, fc: fc, folder: m.Folder, id: m.ID, uid: uid}
	if err := r.start(); err != nil {
		r.Close()
		return nil, Transport(refused(err))
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
		lit, failed := r.lit, r.err != nil
		go func() {
			if failed {
				// go-imap's reader went on at the literal's first error,
				// and FetchCommand.Close would read the literal's buffer
				// again beside it (go test -race saw both at once): wait
				// for the reader to end on the closed connection, so that
				// Close finds nothing left to read.
				<-r.cn.c.Closed()
			} else if lit != nil {
				io.Copy(io.Discard, lit)
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

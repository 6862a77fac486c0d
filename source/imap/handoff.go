package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/netx"
)

// handoff sits between go-imap and a connection's stream (TLS, or the
// plain socket) so that a logged-in connection can be taken from go-imap
// and spoken to directly (Pool.Detached). go-imap has no such API; what it
// needs is only that its reader sees the stream end, and that no byte the
// server sent is left in go-imap's buffers, which holds while nothing is
// asked of an idle, logged-in, unselected session.
type handoff struct {
	net.Conn
	taken atomic.Bool
	lost  atomic.Bool // bytes arrived while the stream was being taken
}

func (h *handoff) Read(p []byte) (int, error) {
	if h.taken.Load() {
		return 0, io.EOF
	}
	n, err := h.Conn.Read(p)
	if h.taken.Load() {
		// The read was interrupted to take the stream: go-imap sees its
		// end. Bytes it returned would be lost to the new owner.
		if n > 0 {
			h.lost.Store(true)
		}
		return 0, io.EOF
	}
	return n, err
}

// Close closes the stream unless it was taken: go-imap closes its side
// when its reader ends.
func (h *handoff) Close() error {
	if h.taken.Load() {
		return nil
	}
	return h.Conn.Close()
}

// waker is a stream whose Read can be interrupted without harm
// (deflateConn): wake ends the Read under way, settle forgets a wake no
// Read took.
type waker interface {
	wake()
	settle()
}

// Stream is a logged-in connection taken from go-imap (Pool.Detached): its
// owner speaks IMAP on it directly and must Close it.
type Stream struct {
	net.Conn                    // TLS or plain; reads and writes with the timeouts below
	DC       *netx.DeadlineConn // Begin/End bracket a wait for the server
	Caps     imap.CapSet        // the capabilities after login
	RTT      time.Duration      // the quicker of two NOOPs' round trips
	release  func()             // gives the pool its slot back
	once     sync.Once
}

// Close closes the connection and frees its place in the pool.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		err = s.Conn.Close()
		if s.release != nil {
			s.release()
		}
	})
	return err
}

// ErrNoHandoff: the connection cannot be taken from go-imap (STARTTLS,
// where go-imap holds the TLS layer itself).
var ErrNoHandoff = errors.New("connection cannot be taken from go-imap")

// Detached dials a new connection, logs it in and takes it from go-imap:
// the Stream is logged in, with no mailbox selected and no command
// pending, and holds a place among the pool's connections until it is
// closed. A pooled connection would not do: one lent for a pipelined
// APPEND goes back to the pool before its answer is in.
func (p *Pool) Detached(ctx context.Context) (*Stream, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	stream, caps, rtt, err := p.take(c)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return &Stream{Conn: stream, DC: c.dc, Caps: caps, RTT: rtt, release: func() { <-p.sem }}, nil
}

// take takes c's stream from go-imap (see Detached), with the server's
// capabilities. On failure c is closed.
func (p *Pool) take(c *Conn) (net.Conn, imap.CapSet, time.Duration, error) {
	h := c.h
	if h == nil {
		c.close()
		return nil, nil, 0, ErrNoHandoff
	}
	// After a login whose answer carried no capabilities, go-imap asks
	// CAPABILITY on its own, from a goroutine, after the login has
	// returned. Nothing may be owed to go-imap when the stream changes
	// hands, and the server answers in order: a NOOP makes sure go-imap
	// has seen the login through (and started its CAPABILITY if it
	// will), Caps waits for that CAPABILITY unless its data is in, and a
	// second NOOP, answered after it, makes sure its end is in too.
	var caps imap.CapSet
	var rtt time.Duration
	err := c.Do(func() error {
		if c.fresh {
			// Its capabilities came in its greeting: nothing to wait
			// for, and two round trips saved per connection (TestWAN).
			caps, rtt = c.c.Caps(), c.rtt
			return nil
		}
		if known := p.roundTrip(); c.loginCaps && known > 0 {
			// Nothing owed either (see login), and the round trip was
			// timed on another connection: an APPEND connection is
			// ready two round trips sooner.
			caps, rtt = c.c.Caps(), known
			return nil
		}
		begin := time.Now()
		if err := c.c.Noop().Wait(); err != nil {
			return err
		}
		rtt = time.Since(begin)
		caps = c.c.Caps()
		begin = time.Now()
		err := c.c.Noop().Wait()
		rtt = min(rtt, time.Since(begin))
		p.rtt.CompareAndSwap(0, max(int64(rtt), 1))
		return err
	})
	if err != nil {
		c.close()
		return nil, nil, 0, Transport(fmt.Errorf("%s: noop: %w", p.cfg.Addr, err))
	}
	h.taken.Store(true)
	// Wake go-imap's reader, blocked on the idle connection; it sees EOF
	// and ends. A compressed stream is woken above the decompressor, whose
	// state a failed read would end; a plain or TLS one through the
	// DeadlineConn, which keeps any Read from arming a later deadline (a
	// reader that entered Read while the last NOOP's wait was open did
	// so, and then waited out the whole timeout on a server with nothing
	// to say: runs of 2 minutes instead of 4 seconds in the benchmark).
	// Both wakes hold until undone below, so one is enough.
	w, wakes := h.Conn.(waker)
	if wakes {
		w.wake()
	} else {
		c.dc.Wake()
	}
	<-c.c.Closed()
	if wakes {
		w.settle() // a wake go-imap's reader did not take is not the new owner's
	} else {
		c.dc.Unwake()
	}
	if h.lost.Load() {
		h.Conn.Close()
		return nil, nil, 0, fmt.Errorf("%s: the server spoke while the connection was being taken over", p.cfg.Addr)
	}
	return h.Conn, caps, rtt, nil
}

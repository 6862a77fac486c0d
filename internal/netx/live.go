package netx

import (
	"errors"
	"net"
	"sync"
)

// ErrAborted is returned by Track once the run was cancelled.
var ErrAborted = errors.New("cancelled")

// Live is the set of sockets a store has open. Abort closes them all, so
// any read or write waiting on a server fails at once: Ctrl-C and SIGTERM
// are acted on within moments, whatever the server does or does not send.
// The zero value is ready to use.
type Live struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	aborted bool
}

// Track adds c to the set and returns it wrapped: closing the wrapper
// takes it off again. After Abort, c is closed and ErrAborted returned.
func (l *Live) Track(c net.Conn) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		c.Close()
		return nil, ErrAborted
	}
	if l.conns == nil {
		l.conns = map[net.Conn]struct{}{}
	}
	l.conns[c] = struct{}{}
	return &tracked{Conn: c, l: l}, nil
}

type tracked struct {
	net.Conn
	l *Live
}

func (t *tracked) Close() error {
	t.l.mu.Lock()
	delete(t.l.conns, t.Conn)
	t.l.mu.Unlock()
	return t.Conn.Close()
}

// Abort closes every tracked socket, and every one tracked after it.
func (l *Live) Abort() {
	l.mu.Lock()
	l.aborted = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

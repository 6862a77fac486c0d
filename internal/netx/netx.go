// Package netx has the network helpers the protocol adapters share.
package netx

import (
	"net"
	"sync"
	"time"
)

// NewDeadlineConn wraps c; timeout is the longest the server may stay silent
// while a command waits.
func NewDeadlineConn(c net.Conn, timeout time.Duration) *DeadlineConn {
	return &DeadlineConn{Conn: c, timeout: timeout}
}

// DeadlineConn gives a protocol client the timeout it lacks (go-imap: none
// while waiting for a response and a fixed 5 minutes per literal; go-pop3:
// none at all). While a command
// is active, every Read must make progress within timeout; while idle in
// the pool, the connection may wait forever. the client library's own deadlines
// are ignored so that a large literal on a slow link is not cut at 5 minutes.
type DeadlineConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex
	active  int
}

// Begin marks a command as waiting for the server.
func (d *DeadlineConn) Begin() {
	d.mu.Lock()
	d.active++
	d.mu.Unlock()
	d.Conn.SetReadDeadline(time.Now().Add(d.timeout)) // applies to a Read already waiting
}

// End marks it done.
func (d *DeadlineConn) End() {
	d.mu.Lock()
	d.active--
	idle := d.active == 0
	d.mu.Unlock()
	if idle {
		d.Conn.SetReadDeadline(time.Time{})
	}
}

func (d *DeadlineConn) Read(p []byte) (int, error) {
	d.mu.Lock()
	active := d.active > 0
	d.mu.Unlock()
	if active {
		d.Conn.SetReadDeadline(time.Now().Add(d.timeout))
	}
	return d.Conn.Read(p)
}

func (d *DeadlineConn) Write(p []byte) (int, error) {
	d.Conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.Conn.Write(p)
}

func (d *DeadlineConn) SetDeadline(time.Time) error      { return nil }
func (d *DeadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (d *DeadlineConn) SetWriteDeadline(time.Time) error { return nil }

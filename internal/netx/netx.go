// Package netx has the network helpers the protocol adapters share.
package netx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// NewDeadlineConn wraps c; timeout is the longest a command may wait
// without progress (see DeadlineConn).
func NewDeadlineConn(c net.Conn, timeout time.Duration) *DeadlineConn {
	return &DeadlineConn{Conn: c, timeout: timeout}
}

// Progress is what a server must send within each timeout while a command
// waits. A byte is not enough: a server that sends "* OK still working"
// once a second would hold a command for ever.
const Progress = 4 << 10

// DeadlineConn gives a protocol client the timeout it lacks (go-imap: 30
// seconds per response and a fixed 5 minutes per literal, re-armed on
// every response; go-pop3: none at all). While a command is active, the
// server must send Progress bytes within each timeout, or the read fails
// once, at the end of that window; a large literal on a slow link is fine,
// a silent or dribbling server is not. While idle in the pool the
// connection may wait for ever. The client library's own deadlines are
// ignored: a Read that failed with a timeout must not be re-armed by it.
type DeadlineConn struct {
	net.Conn
	timeout time.Duration
	// mu orders every change to the read deadline: a Read arming its
	// window, Begin, End and Wake, so none undoes another's.
	mu     sync.Mutex
	active int
	// The current window: when it ends, and what arrived in it.
	until time.Time
	got   int
	woken bool // Wake: every read from now on ends at once
}

// Begin marks a command as waiting for the server.
func (d *DeadlineConn) Begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active++
	if d.active == 1 {
		d.until, d.got = time.Now().Add(d.timeout), 0
	}
	if !d.woken {
		d.Conn.SetReadDeadline(d.until) // applies to a Read already waiting
	}
}

// End marks it done.
func (d *DeadlineConn) End() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
	if d.active == 0 && !d.woken {
		d.Conn.SetReadDeadline(time.Time{})
	}
}

// Wake ends the Read under way, and makes every later one end at once
// with a timeout, whatever Begin says: the connection's reader is to stop
// (a stream taken from its client). Under mu, no Read can arm its window
// after it.
func (d *DeadlineConn) Wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.woken = true
	d.Conn.SetReadDeadline(time.Now())
}

// Unwake undoes Wake, for the stream's next owner.
func (d *DeadlineConn) Unwake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.woken = false
	d.Conn.SetReadDeadline(time.Time{})
}

func (d *DeadlineConn) Read(p []byte) (int, error) {
	d.mu.Lock()
	active := d.active > 0 && !d.woken
	if active {
		d.Conn.SetReadDeadline(d.until)
	}
	d.mu.Unlock()
	n, err := d.Conn.Read(p)
	if active && n > 0 {
		d.mu.Lock()
		d.got += n
		if d.got >= Progress {
			d.until, d.got = time.Now().Add(d.timeout), 0
		}
		d.mu.Unlock()
	}
	return n, err
}

func (d *DeadlineConn) Write(p []byte) (int, error) {
	d.Conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.Conn.Write(p)
}

func (d *DeadlineConn) SetDeadline(time.Time) error      { return nil }
func (d *DeadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (d *DeadlineConn) SetWriteDeadline(time.Time) error { return nil }

// Retry runs dial until it succeeds, returns an error that another try
// cannot fix, or has failed attempts times, waiting 0.5 s, 1 s, 2 s ...
// between tries. Only network failures (reset, refused, EOF, timeout) are
// retried: never a certificate or a login that was refused.
func Retry[T any](ctx context.Context, attempts int, dial func() (T, error)) (T, error) {
	v, err := dial()
	for i := 1; i < attempts && err != nil && retryable(err) && ctx.Err() == nil; i++ {
		select {
		case <-time.After(time.Duration(1<<(i-1)) * 500 * time.Millisecond):
		case <-ctx.Done():
		}
		v, err = dial()
	}
	return v, err
}

func retryable(err error) bool {
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &cert) || errors.As(err, &unknown) || errors.As(err, &hostname) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

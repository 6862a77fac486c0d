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

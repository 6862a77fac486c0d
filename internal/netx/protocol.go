package netx

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// What a server's first bytes say it speaks, so that a URL with the wrong
// scheme or port is answered with what to use instead of a protocol
// error ("first record does not look like a TLS handshake").

// Protocols Sniff can name.
const (
	IMAP = "IMAP"
	POP3 = "POP3"
	SMTP = "SMTP"
	TLS  = "TLS"
	HTTP = "HTTP"
	SSH  = "SSH"
)

// Sniff names the protocol whose greeting b starts with, or "".
func Sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("* OK")), bytes.HasPrefix(b, []byte("* PREAUTH")), bytes.HasPrefix(b, []byte("* BYE")):
		return IMAP
	case bytes.HasPrefix(b, []byte("+OK")), bytes.HasPrefix(b, []byte("-ERR")):
		return POP3
	case bytes.HasPrefix(b, []byte("220")), bytes.HasPrefix(b, []byte("554")):
		return SMTP
	case len(b) >= 2 && (b[0] == 0x16 || b[0] == 0x15) && b[1] == 0x03:
		return TLS // a handshake or an alert record
	case bytes.HasPrefix(b, []byte("HTTP/")):
		return HTTP
	case bytes.HasPrefix(b, []byte("SSH-")):
		return SSH
	}
	return ""
}

// Recorder is a net.Conn that keeps the first bytes read through it.
type Recorder struct {
	net.Conn
	full  atomic.Bool // once set, reads pass straight through
	mu    sync.Mutex
	first []byte
}

const recordBytes = 16

// NewRecorder records the first bytes read from c.
func NewRecorder(c net.Conn) *Recorder { return &Recorder{Conn: c} }

func (r *Recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 && !r.full.Load() {
		r.mu.Lock()
		if k := min(n, recordBytes-len(r.first)); k > 0 {
			r.first = append(r.first, p[:k]...)
		}
		r.full.Store(len(r.first) == recordBytes)
		r.mu.Unlock()
	}
	return n, err
}

// First returns the first bytes read so far.
func (r *Recorder) First() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.first)
}

// WrongProtocol is a connection whose server answered in another
// protocol, or with TLS where plain text was expected (or the other way
// round): the URL's scheme or port is wrong.
type WrongProtocol struct {
	Addr string
	Want string // IMAP or POP3
	TLS  bool   // the URL asked for TLS from the first byte
	Seen string // what the server spoke (Sniff), "" for silence
	// Err is the error the mismatch caused, kept for its text only: it
	// is not unwrapped, so that no retry loop takes a timeout or EOF
	// that a wrong port causes for one worth another try.
	Err error
}

func (e *WrongProtocol) Error() string {
	want := e.Want
	if e.TLS {
		want += " over TLS"
	}
	switch {
	case e.Seen == "":
		return fmt.Sprintf("%s sent no %s greeting (%s)", e.Addr, e.Want, silence(e.Err))
	case e.Seen == TLS:
		return fmt.Sprintf("%s expects TLS from the first byte, not plain %s", e.Addr, e.Want)
	case e.Seen == e.Want:
		return fmt.Sprintf("%s speaks plain %s, not %s", e.Addr, e.Seen, want)
	}
	return fmt.Sprintf("%s speaks %s, not %s", e.Addr, e.Seen, want)
}

// silence says how a server that sent nothing ended the wait.
func silence(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "it sent nothing before the timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "it closed the connection"
	}
	return err.Error()
}

// Hint says which URL to use instead.
func (e *WrongProtocol) Hint() string {
	scheme, tlsScheme, port, tlsPort := "imap", "imaps", 143, 993
	if e.Want == POP3 {
		scheme, tlsScheme, port, tlsPort = "pop3", "pop3s", 110, 995
	}
	switch {
	case e.Seen == TLS || (e.Seen == "" && !e.TLS):
		return fmt.Sprintf("use %s:// for a port with TLS from the first byte (usually %d)", tlsScheme, tlsPort)
	case e.Seen == e.Want:
		return fmt.Sprintf("use %s:// for this port (STARTTLS), or %s:// with the TLS port (usually %d)", scheme, tlsScheme, tlsPort)
	case e.Seen == "":
		return fmt.Sprintf("check the port: %s:// is usually port %d, %s:// port %d", tlsScheme, tlsPort, scheme, port)
	}
	return fmt.Sprintf("this port does not speak %s: %s:// is usually port %d, %s:// port %d", e.Want, tlsScheme, tlsPort, scheme, port)
}

// HandshakeMismatch turns a failed TLS handshake with addr, which
// expected want over TLS, into a *WrongProtocol when the server answered
// in plain text; else it returns nil.
func HandshakeMismatch(err error, addr, want string) error {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		return nil
	}
	seen := Sniff(rh.RecordHeader[:])
	if seen == "" {
		seen = "something other than TLS"
	}
	return &WrongProtocol{Addr: addr, Want: want, TLS: true, Seen: seen, Err: err}
}

// GreetingMismatch turns err, met reading the greeting of a connection
// to addr that expected want (over TLS if tlsUsed), into a *WrongProtocol
// when first (the bytes the server sent) shows another protocol, TLS, or
// nothing at all; else it returns nil.
func GreetingMismatch(err error, addr, want string, tlsUsed bool, first []byte) error {
	seen := Sniff(first)
	if seen == want || (seen == "" && len(first) > 0) {
		return nil // the right protocol, or a greeting best quoted as it is
	}
	return &WrongProtocol{Addr: addr, Want: want, TLS: tlsUsed, Seen: seen, Err: err}
}

package netx

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

func TestRetry(t *testing.T) {
	for _, tt := range []struct {
		err   error
		calls int
	}{
		{syscall.ECONNRESET, 3},
		{io.ErrUnexpectedEOF, 3},
		{x509.UnknownAuthorityError{}, 1},
		{errors.New("login rejected"), 1},
	} {
		calls := 0
		_, err := Retry(context.Background(), 3, func() (int, error) {
			calls++
			return 0, tt.err
		})
		if calls != tt.calls || !errors.Is(err, tt.err) && err == nil {
			t.Errorf("%v: %d calls, want %d", tt.err, calls, tt.calls)
		}
	}
	calls := 0
	v, err := Retry(context.Background(), 3, func() (int, error) {
		calls++
		if calls < 2 {
			return 0, syscall.ECONNREFUSED
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 2 {
		t.Fatalf("got %d, %v after %d calls", v, err, calls)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		first string
		want  string
	}{
		{"* OK [CAPABILITY IMAP4rev1] ready", IMAP},
		{"* PREAUTH ready", IMAP},
		{"+OK Dovecot ready.", POP3},
		{"-ERR go away", POP3},
		{"220 mx.example ESMTP", SMTP},
		{"\x16\x03\x01\x00\x5c", TLS},
		{"\x15\x03\x03\x00\x02", TLS},
		{"HTTP/1.1 400 Bad Request", HTTP},
		{"SSH-2.0-OpenSSH_9.2", SSH},
		{"hello", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.first)); got != tt.want {
			t.Errorf("Sniff(%q) = %q, want %q", tt.first, got, tt.want)
		}
	}
}

func TestGreetingMismatch(t *testing.T) {
	cause := errors.New("cause")
	if GreetingMismatch(cause, "h:1", IMAP, true, []byte("* OK hi")) != nil {
		t.Error("an IMAP greeting to an IMAP client is no mismatch")
	}
	if GreetingMismatch(cause, "h:1", IMAP, false, []byte("garbage")) != nil {
		t.Error("an unknown greeting is quoted, not guessed at")
	}
	err := GreetingMismatch(cause, "h:1", IMAP, true, []byte("+OK POP3"))
	var wp *WrongProtocol
	if !errors.As(err, &wp) || wp.Seen != POP3 || !strings.Contains(wp.Hint(), "imaps:// is usually port 993") {
		t.Errorf("POP3 greeting to imaps: %v", err)
	}
	if errors.Is(err, cause) {
		t.Error("the cause is unwrapped: a retry loop would take a wrong port for a passing fault")
	}
}

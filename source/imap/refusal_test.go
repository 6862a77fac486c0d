package imap

import (
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

func TestRefused(t *testing.T) {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tt := range []struct {
		name      string
		err       error
		quota     bool
		transient bool
		delay     time.Duration
	}{
		{"Gmail's spent allowance", no(imap.ResponseCodeOverQuota, "Account exceeded command or bandwidth limits."), true, false, 0},
		{"the same words without the code", no("", "Account exceeded command or bandwidth limits."), true, false, 0},
		{"any server's OVERQUOTA", no(imap.ResponseCodeOverQuota, "Quota exceeded"), true, false, 0},
		{"unavailable", no(imap.ResponseCodeUnavailable, "try later"), false, true, 0},
		{"in use", no(imap.ResponseCodeInUse, "locked"), false, true, 0},
		{"Gmail throttling", no("THROTTLED", "Too many simultaneous connections or commands"), false, true, 0},
		{"Microsoft's backoff", &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request is throttled. Suggested Backoff Time: 1500 milliseconds"}, false, true, 1500 * time.Millisecond},
		{"a plain NO", no("", "no such message"), false, false, 0},
		{"not a server answer", errors.New("connection reset"), false, false, 0},
	} {
		err := refused(tt.err)
		var te *source.TransientError
		isT := errors.As(err, &te)
		if errors.Is(err, source.ErrQuota) != tt.quota || isT != tt.transient || (isT && te.Delay != tt.delay) {
			t.Errorf("%s: refused(%v) = %v (quota %v, transient %v)", tt.name, tt.err, err, errors.Is(err, source.ErrQuota), isT)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: the server's answer is lost from %v", tt.name, err)
		}
	}
}

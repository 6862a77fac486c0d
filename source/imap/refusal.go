package imap

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// backoffHint is Microsoft 365's throttling answer: "BAD ... Suggested
// Backoff Time: 1234 milliseconds".
var backoffHint = regexp.MustCompile(`(?i)Suggested Backoff Time:\s*(\d+)\s*milliseconds`)

// codeThrottled is Gmail's answer to a client going too fast ("NO
// [THROTTLED]"; on an OK it only says the command was slowed down).
const codeThrottled imap.ResponseCode = "THROTTLED"

// Refusal marks the server answers that ask to be tried again later as
// source.TransientError: a throttling answer with the wait it names,
// Gmail's [THROTTLED], and the RFC 5530 codes [UNAVAILABLE], [INUSE] and
// [SERVERBUG]. Other errors are returned as they are. Both directions use
// it; what [OVERQUOTA] means depends on the direction (refused, and the
// sink's classify).
func Refusal(err error) error {
	var ie *imap.Error
	if err == nil || !errors.As(err, &ie) {
		return err
	}
	if m := backoffHint.FindStringSubmatch(ie.Text); m != nil {
		ms, _ := strconv.Atoi(m[1])
		return &source.TransientError{Err: err, Delay: time.Duration(ms) * time.Millisecond}
	}
	switch ie.Code {
	case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeServerBug, codeThrottled:
		return &source.TransientError{Err: err}
	}
	return err
}

// refused classifies a refusal to read: as Refusal, and an [OVERQUOTA]
// answer, which from a source means the account may download no more
// for now, as source.ErrQuota. Gmail answers "NO [OVERQUOTA] Account
// exceeded command or bandwidth limits." once its daily IMAP download
// allowance is spent (https://support.google.com/a/answer/1071518).
func refused(err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeOverQuota ||
		strings.Contains(strings.ToLower(ie.Text), "exceeded command or bandwidth limits")) {
		return fmt.Errorf("%w: %w", source.ErrQuota, err)
	}
	return Refusal(err)
}

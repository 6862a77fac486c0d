package netx

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
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

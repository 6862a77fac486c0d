package plan

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// retry runs fn until it succeeds, fails for good, or runs out of
// attempts, with the same backoff as copies.
func (e *engine) retry(ctx context.Context, what string, fn func() error) error {
	return e.retryEach(ctx, func(bool) error { return fn() }, "what", what)
}

// retryEach is the one retry loop: fn is told whether it is a retry (a
// copy looks at the destination before writing again), and attrs name
// what is retried in the log.
func (e *engine) retryEach(ctx context.Context, fn func(again bool) error, attrs ...any) error {
	err := fn(false)
	for attempt := 1; err != nil && attempt <= e.opt.Retries && transient(err) && ctx.Err() == nil; attempt++ {
		e.mu.Lock()
		e.sum.Retries++
		e.mu.Unlock()
		delay := backoff(e.opt.RetryBase, attempt, err)
		e.holdAll(err)
		e.opt.Log.Warn("retrying", append(attrs, "attempt", attempt, "after", delay.Round(time.Millisecond), "error", err)...)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		err = fn(true)
	}
	return err
}

// transient reports whether err is worth another try: a broken connection
// or timeout, or what an adapter marked as source.TransientError. What a
// retry cannot change (a message refused or malformed, a full destination,
// a message gone) is not.
func transient(err error) bool {
	var te *source.TransientError
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.Is(err, sink.ErrRejected), errors.Is(err, sink.ErrStop), errors.Is(err, source.ErrSizeMismatch),
		errors.Is(err, source.ErrMessageNotFound), errors.Is(err, source.ErrQuota), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &te):
		return true
	case errors.As(err, &errno):
		// Every errno satisfies net.Error; only these can pass by
		// themselves (a missing file, a name too long, a full disk
		// cannot).
		return slices.Contains(retryableErrnos, errno)
	case errors.As(err, &ne):
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

var retryableErrnos = []syscall.Errno{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.ETIMEDOUT, syscall.EAGAIN, syscall.EINTR, syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN}

// backoff is base·2^(attempt-1), capped at a minute, with ±25 % jitter so
// parallel workers do not retry in step; a delay the server asked for
// comes first.
func backoff(base time.Duration, attempt int, err error) time.Duration {
	var te *source.TransientError
	if errors.As(err, &te) && te.Delay > 0 {
		return te.Delay
	}
	d := min(base<<(attempt-1), time.Minute)
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// holdAll: a server that names a backoff time (Microsoft 365's
// "Suggested Backoff Time") throttles the account, not one message, so
// every worker holds off until then, not only the one that was told.
func (e *engine) holdAll(err error) {
	var te *source.TransientError
	if !errors.As(err, &te) || te.Delay <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if until := time.Now().Add(te.Delay); until.After(e.holdUntil) {
		e.holdUntil = until
	}
}

// waitHold waits out a backoff the server asked of the whole account.
func (e *engine) waitHold(ctx context.Context) error {
	e.mu.Lock()
	wait := time.Until(e.holdUntil)
	e.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

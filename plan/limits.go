package plan

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Limits slow a run down or cut it short, for providers that throttle or
// cap what an account may move in a day (Gmail: about 2.5 GB of IMAP
// download and 500 MB of upload a day).
type Limits struct {
	MessagesPerSecond float64 // 0: no limit
	BytesPerSecond    float64 // 0: no limit
	// ByteBudget is how many bytes the job may copy per UTC day, counted
	// in the checkpoint across runs; 0: no budget. A run that reaches it
	// stops cleanly with ErrBudget and the next day's run continues.
	ByteBudget int64
	// Now tells the day a budget counts in (nil: the clock); tests set it.
	Now func() time.Time
}

// ErrBudget ends a run that reached Limits.ByteBudget, or the source's own
// allowance (source.ErrQuota, wrapped in it): what was copied is
// recorded, the rest waits for the next day's run.
var ErrBudget = errors.New("the day's byte budget is used up; the next run continues where this one stopped")

type limiter struct {
	msgs, bytes *rate.Limiter
}

func newLimiter(l Limits) *limiter {
	out := &limiter{}
	if l.MessagesPerSecond > 0 {
		out.msgs = rate.NewLimiter(rate.Limit(l.MessagesPerSecond), 1)
	}
	if l.BytesPerSecond > 0 {
		// A burst of one second's worth, at least 64 KiB, so a read of a
		// buffer is never larger than the burst.
		burst := int(math.Max(l.BytesPerSecond, 64<<10))
		out.bytes = rate.NewLimiter(rate.Limit(l.BytesPerSecond), burst)
	}
	return out
}

// message waits for the next message's turn.
func (l *limiter) message(ctx context.Context) error {
	if l.msgs == nil {
		return nil
	}
	return l.msgs.Wait(ctx)
}

// reader paces r to the byte rate.
func (l *limiter) reader(ctx context.Context, r io.Reader) io.Reader {
	if l.bytes == nil {
		return r
	}
	return &pacedReader{ctx: ctx, r: r, l: l.bytes}
}

type pacedReader struct {
	ctx context.Context
	r   io.Reader
	l   *rate.Limiter
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > p.l.Burst() {
		b = b[:p.l.Burst()]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		if werr := p.l.WaitN(p.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

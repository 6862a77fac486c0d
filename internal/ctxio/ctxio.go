// Package ctxio makes readers stop when their context is cancelled, so a
// copy in progress is abandoned (and rolled back by its sink) on Ctrl-C.
package ctxio

import (
	"context"
	"io"
)

// Reader returns r, failing every Read once ctx is done.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

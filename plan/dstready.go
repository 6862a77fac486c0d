package plan

import (
	"context"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// dstReady is a destination folder made ready for a source folder's
// copies: created and subscribed, its records checked (dstKept) and, if
// they cannot be believed, listed (idx). Read its fields after done.
type dstReady struct {
	done      chan struct{}
	createErr error
	kept      bool
	idx       *dstIndex
	indexErr  error
}

// readyDst makes fs's destination folder ready in the background while
// the source folder is listed: round trips to two servers that wait on
// nothing of each other (through 20 ms each way, a folder's CREATE,
// SUBSCRIBE and listing cost 0.12 s after the source's listing). The
// subscription goes alongside the listing. With --mirror-deletes only
// the folder is made: its listing waits for the mirror's deletions, or a
// copy about to be deleted would count as present.
func (e *engine) readyDst(ctx context.Context, f source.Folder, fs *FolderSummary) *dstReady {
	r := &dstReady{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if !e.opt.DryRun {
			r.createErr = e.retry(ctx, "create folder "+fs.Destination, func() error {
				return e.dst.CreateFolder(ctx, fs.Destination)
			})
			if r.createErr != nil {
				return
			}
			if sub, ok := e.dst.(sink.Subscriber); ok && e.subscribes(f, fs) {
				subscribed := make(chan struct{})
				go func() {
					defer close(subscribed)
					if err := sub.Subscribe(ctx, fs.Destination); err != nil {
						e.opt.Log.Warn("folder not subscribed", "folder", fs.Destination, "error", err)
					}
				}()
				defer func() { <-subscribed }()
			}
		}
		if e.opt.MirrorDeletes {
			return
		}
		if r.kept = e.dstKept(ctx, fs.Destination); !r.kept {
			r.idx, r.indexErr = e.index(ctx, fs.Destination)
		}
	}()
	return r
}

// subscribes reports whether fs's destination is subscribed: subscriptions
// carry over, so a folder subscribed at the source, or any folder of a
// source that uses no subscriptions (a store without them, or an account
// with none), is; a folder the user unsubscribed from stays unsubscribed.
// INBOX always is.
func (e *engine) subscribes(f source.Folder, fs *FolderSummary) bool {
	return !f.Unsubscribed || e.subscribeAll || fs.Destination == "INBOX"
}

// writeGate is a folder's place among those copying at once: taken when
// the folder has listed both sides and found something to copy, given
// back when its copies are done. A folder waiting for one holds no
// message in flight and no destination connection of its own.
type writeGate struct {
	writers chan struct{}
	held    bool
}

func (g *writeGate) take(ctx context.Context) error {
	select {
	case g.writers <- struct{}{}:
		g.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *writeGate) release() {
	if g.held {
		<-g.writers
		g.held = false
	}
}

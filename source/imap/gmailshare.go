package imap

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"

	"github.com/mailferry/mailferry/source"
)

// In Gmail's view a message with several labels is listed in several
// folders, one UID in each. Each of those copies is the same message
// (one X-GM-MSGID), and Gmail counts every download against the
// account's daily allowance, so its body is read once: the first Open
// keeps it, and the Opens of its other folders take it from there.
//
// Which messages to keep is known from the labels read once per run
// (archived: how many shown folders list each message) and, per folder,
// from one FETCH of X-GM-MSGID. Kept bodies are held in memory, within
// shareBytes for the store; a body that does not fit, or a message over
// shareMaxMsg, is read again where needed, which costs quota, never
// correctness.
const (
	shareBytes  = 32 << 20
	shareMaxMsg = 1 << 20
)

type bodyShare struct {
	mu     sync.Mutex
	of     map[string]uint64 // folder+"\x00"+ID: X-GM-MSGID, for shared messages
	left   map[uint64]int    // X-GM-MSGID: copies still to be opened
	bodies map[uint64][]byte
	order  []uint64 // kept bodies, oldest first
	used   int64
	// reads counts the bodies read from the server for shared messages,
	// taken those served from memory instead; for tests.
	reads, taken int
}

// reset forgets everything: a new listing of the folders starts a new run.
func (b *bodyShare) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.of, b.left, b.bodies, b.order, b.used = nil, nil, nil, nil, 0
}

// expect notes that folder's message id is X-GM-MSGID msgID, which copies
// shown folders list.
func (b *bodyShare) expect(folder, id string, msgID uint64, copies int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.of == nil {
		b.of, b.left, b.bodies = map[string]uint64{}, map[uint64]int{}, map[uint64][]byte{}
	}
	b.of[entryKey(folder, id)] = msgID
	if _, seen := b.left[msgID]; !seen {
		b.left[msgID] = copies
	}
}

// take returns the kept body of folder's message id, if there is one;
// shared reports whether the message is one other folders list.
func (b *bodyShare) take(folder, id string) (body []byte, msgID uint64, shared bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgID, shared = b.of[entryKey(folder, id)]
	if !shared {
		return nil, 0, false
	}
	delete(b.of, entryKey(folder, id)) // each copy is opened for itself once
	b.left[msgID]--
	body = b.bodies[msgID]
	if body != nil {
		b.taken++
	}
	if b.left[msgID] <= 0 {
		b.drop(msgID)
		delete(b.left, msgID)
	}
	return body, msgID, true
}

// has reports whether folder's message id can be served from memory.
func (b *bodyShare) has(folder, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgID, ok := b.of[entryKey(folder, id)]
	return ok && b.bodies[msgID] != nil
}

// keep holds body for the other copies of msgID, evicting the oldest
// kept bodies to make room.
func (b *bodyShare) keep(msgID uint64, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	if b.left[msgID] <= 0 || b.bodies[msgID] != nil || len(body) > shareMaxMsg {
		return
	}
	for b.used+int64(len(body)) > shareBytes && len(b.order) > 0 {
		b.drop(b.order[0])
	}
	b.bodies[msgID] = body
	b.order = append(b.order, msgID)
	b.used += int64(len(body))
}

func (b *bodyShare) drop(msgID uint64) {
	if body, ok := b.bodies[msgID]; ok {
		b.used -= int64(len(body))
		delete(b.bodies, msgID)
		if i := slices.Index(b.order, msgID); i >= 0 {
			b.order = slices.Delete(b.order, i, i+1)
		}
	}
}

// shareFolder notes the shared messages of a label folder just listed
// and, with labels as keywords, gives each message its keywords.
func (s *Store) shareFolder(ctx context.Context, gm *gmailView, folder string, msgs []source.Message) error {
	gm.mu.Lock()
	copies := gm.copies
	gm.mu.Unlock()
	if copies == nil {
		// The labels are read once per run, before the first label
		// folder; Archive's listing takes them if nothing came since.
		keep, err := s.archived(ctx, gm)
		if err != nil {
			return err
		}
		gm.mu.Lock()
		gm.counted, copies = keep, gm.copies
		gm.mu.Unlock()
	}
	if len(copies) == 0 && !gm.keywords {
		return nil
	}
	ids, err := s.gmailFetch(ctx, folder, gm.keywords)
	if err != nil {
		return err
	}
	for i, m := range msgs {
		_, uid, err := ParseID(m.ID)
		if err != nil {
			continue
		}
		e, ok := ids[uid]
		if ok && gm.keywords {
			msgs[i].Flags = s.withLabels(m.Flags, e.labels)
		}
		if ok && copies[e.msgID] > 1 && m.Size >= 0 && m.Size <= shareMaxMsg {
			s.share.expect(folder, m.ID, e.msgID, copies[e.msgID])
		}
	}
	return nil
}

// keepReader passes a shared message's body through and keeps it once
// read whole.
type keepReader struct {
	io.ReadCloser
	buf  bytes.Buffer
	size int64
	keep func([]byte)
}

func (r *keepReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.buf.Write(p[:n])
	if err == io.EOF && int64(r.buf.Len()) == r.size && r.keep != nil {
		r.keep(r.buf.Bytes())
		r.keep = nil
	}
	return n, err
}

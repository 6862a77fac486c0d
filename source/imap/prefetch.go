package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/source"
)

// Reading ahead (source.Prefetcher). Open costs a UID FETCH round trip per
// message; one UID FETCH for a run of messages costs one for all of them
// (library audit §1.2: ranged FETCH beats per-UID FETCH everywhere, by 4-7×
// on loopback Dovecot and far more with latency).
//
// Bodies read ahead are held in memory, within prefetchBytes for the whole
// store; larger messages are left to Open, which streams them. A body is
// handed to the first Open of its message, once, and its room is freed
// when that reader is closed. Open waits only for a message already asked
// of the server; one not yet asked it reads itself (and the reader-ahead
// skips it), so a slow or stalled read-ahead costs speed, never progress,
// and an error in it only sends Open back to the per-message path, which
// tells a vanished message from one go-imap dropped (audit #4).
const (
	// prefetchBytes is the room for bodies held at once, whole store.
	// With 8 MB, shared by the folders copied at once, one folder's
	// bodies filled it while another's Opens fell back to a UID FETCH
	// each: 382 of 5,000 on loopback IMAP→IMAP, and the MULTIAPPEND
	// batches behind them shrank to a message or two. 32 MB is also what
	// a slow link needs (TestWAN, 20 ms each way, 50 Mbit/s: 8.73 s with
	// 8 MB, 6.67 s with 32).
	prefetchBytes  = 32 << 20
	prefetchMaxMsg = 1 << 20 // larger ones are streamed by Open
	prefetchChunk  = 256     // messages per UID FETCH
)

// aheadState is where a message is in the read-ahead.
type aheadState int

const (
	aheadQueued aheadState = iota // hinted, not asked of the server yet
	aheadAsked                    // in a UID FETCH; ready closes when done
)

type aheadEntry struct {
	m     source.Message
	uid   imap.UID
	state aheadState
	size  int64         // room reserved while asked or held
	ready chan struct{} // closed once body or err is set
	body  []byte
	err   error
}

// ahead is a store's read-ahead: one queue and at most one reader
// goroutine per folder.
type ahead struct {
	mu    sync.Mutex
	limit int64 // bytes held at once; prefetchBytes unless a test sets it
	used  int64
	peak  int64         // the most used ever was, for tests
	freed chan struct{} // a token whenever room is freed
	// queues holds, by folder, the entries in hint order; a folder has
	// one while, and only while, its reader goroutine runs.
	queues  map[string][]*aheadEntry
	entries map[string]*aheadEntry // folder+"\x00"+ID
}

func entryKey(folder, id string) string { return folder + "\x00" + id }

// Prefetch implements source.Prefetcher.
func (s *Store) Prefetch(ctx context.Context, folder string, msgs []source.Message) {
	a := &s.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.limit == 0 {
		a.limit = prefetchBytes
	}
	if a.entries == nil {
		a.freed = make(chan struct{}, 1)
		a.queues = map[string][]*aheadEntry{}
		a.entries = map[string]*aheadEntry{}
	}
	_, running := a.queues[folder]
	for _, m := range msgs {
		if m.Size < 0 || m.Size > prefetchMaxMsg || m.Folder != folder || s.share.has(folder, m.ID) {
			continue
		}
		_, uid, err := ParseID(m.ID)
		k := entryKey(folder, m.ID)
		if err != nil || a.entries[k] != nil {
			continue
		}
		e := &aheadEntry{m: m, uid: uid, ready: make(chan struct{})}
		a.entries[k] = e
		a.queues[folder] = append(a.queues[folder], e)
	}
	if !running && len(a.queues[folder]) > 0 {
		// The first chunk is marked asked here, before the caller hands
		// the messages to its workers: their Opens then wait for the
		// read-ahead instead of racing the goroutine to the queue. They
		// often won that race, and each read its message itself, a
		// connection held per body: 35 of a folder's 81 messages one
		// after another through 20 ms each way, a second more for the run.
		first, _ := a.nextChunk(folder)
		go s.readAhead(ctx, folder, first)
	}
}

// nextChunk takes the next messages of folder's queue to ask for, as room
// allows, and marks them asked; with a.mu held. done: the queue is
// empty, and gone.
func (a *ahead) nextChunk(folder string) (chunk []*aheadEntry, done bool) {
	q := a.queues[folder]
	var size int64
	// Once the room has filled, the next UID FETCH waits until a
	// quarter of it is free: asked as each body is freed, the
	// chunks were of one to five messages, a command each (405
	// FETCHes for 5,000 messages on loopback, 31 with this).
	low := a.used > a.limit-a.limit/4
	i := 0
	for ; !low && i < len(q) && len(chunk) < prefetchChunk; i++ {
		e := q[i]
		if e.state != aheadQueued || a.entries[entryKey(folder, e.m.ID)] != e {
			continue // Open took it first
		}
		if a.used+size+e.m.Size > a.limit {
			break
		}
		size += e.m.Size
		chunk = append(chunk, e)
	}
	q = q[i:]
	a.queues[folder] = q
	if len(chunk) == 0 && len(q) == 0 {
		delete(a.queues, folder)
		return nil, true
	}
	for _, e := range chunk {
		e.state, e.size = aheadAsked, e.m.Size
	}
	a.used += size
	a.peak = max(a.peak, a.used)
	return chunk, false
}

// readAhead fetches first, then folder's queue a chunk at a time, as room
// allows.
func (s *Store) readAhead(ctx context.Context, folder string, first []*aheadEntry) {
	a := &s.ahead
	for {
		chunk, done := first, false
		if first == nil {
			a.mu.Lock()
			chunk, done = a.nextChunk(folder)
			a.mu.Unlock()
		}
		first = nil
		if done {
			return
		}

		if len(chunk) == 0 { // no room: wait until an Open frees some
			select {
			case <-a.freed:
				continue
			case <-ctx.Done():
			}
		} else if err := s.fetchAhead(ctx, folder, chunk); err == nil {
			continue
		}
		// Cancelled or failed: what is still queued is left to Open.
		a.mu.Lock()
		delete(a.queues, folder)
		a.mu.Unlock()
		return
	}
}

// fetchAhead reads chunk's bodies with one UID FETCH and hands each to its
// entry as it arrives. Every entry of chunk is finished (ready closed)
// when it returns, with a body or an error.
func (s *Store) fetchAhead(ctx context.Context, folder string, chunk []*aheadEntry) (err error) {
	byUID := make(map[imap.UID]*aheadEntry, len(chunk))
	var uids imap.UIDSet
	for _, e := range chunk {
		byUID[e.uid] = e
		uids.AddNum(e.uid)
	}
	defer func() {
		for _, e := range byUID { // not answered: Open reads it itself
			s.ahead.finish(e, nil, fmt.Errorf("folder %q message %s: not in the read-ahead's answer: %w", folder, e.m.ID, errors.Join(err, errNotAhead)))
		}
	}()
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return err
	}
	broken := true
	defer func() { s.Pool.Put(cn, broken || s.isClosed()) }()
	sel, err := cn.Select(mailbox, true)
	if err != nil {
		broken = !isServerAnswer(err)
		return err
	}
	for uid, e := range byUID {
		if v, _, _ := ParseID(e.m.ID); v != sel.UIDValidity {
			delete(byUID, uid)
			s.ahead.finish(e, nil, errNotAhead) // Open says what became of it
		}
	}
	if len(byUID) == 0 {
		broken = false
		return nil
	}
	err = cn.Do(func() error {
		fc := cn.c.Fetch(uids, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for md := fc.Next(); md != nil; md = fc.Next() {
			var uid imap.UID
			var body []byte
			var berr error
			for it := md.Next(); it != nil; it = md.Next() {
				switch it := it.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					// Exactly the announced size, or nothing: a literal
					// cut short reads as a clean EOF (audit #5).
					if it.Literal == nil {
						break // BODY[] NIL: Open finds out why
					}
					if n := it.Literal.Size(); n > 4*prefetchMaxMsg {
						berr = fmt.Errorf("a %d-byte body where the listing said at most %d", n, prefetchMaxMsg)
					} else {
						body = make([]byte, n)
						_, berr = io.ReadFull(it.Literal, body)
					}
				}
			}
			if berr != nil {
				// Unread bytes in flight: the connection is dropped
				// (Put, broken), which also ends the command.
				return berr
			}
			if e := byUID[uid]; e != nil && body != nil {
				delete(byUID, uid)
				s.ahead.finish(e, body, nil)
			}
		}
		return fc.Close()
	})
	broken = err != nil && !isServerAnswer(err)
	return err
}

// errNotAhead: a message the read-ahead did not get; Open reads it itself.
var errNotAhead = errors.New("not read ahead")

// finish sets e's outcome and wakes an Open waiting on it.
func (a *ahead) finish(e *aheadEntry, body []byte, err error) {
	a.mu.Lock()
	if err != nil {
		a.used -= e.size
		e.size = 0
		a.signal()
	} else {
		a.used += int64(len(body)) - e.size
		a.peak = max(a.peak, a.used)
		e.size = int64(len(body))
	}
	e.body, e.err = body, err
	a.mu.Unlock()
	close(e.ready)
}

func (a *ahead) signal() {
	select {
	case a.freed <- struct{}{}:
	default:
	}
}

// take returns m's body if the read-ahead has or is getting it, as a
// reader whose Close frees its room; ok is false when Open must read it
// itself.
func (a *ahead) take(ctx context.Context, m source.Message) (r io.ReadCloser, ok bool) {
	k := entryKey(m.Folder, m.ID)
	a.mu.Lock()
	e := a.entries[k]
	if e == nil {
		a.mu.Unlock()
		return nil, false
	}
	delete(a.entries, k) // handed over at most once
	state := e.state
	a.mu.Unlock()
	if state == aheadQueued {
		return nil, false // the reader-ahead skips it now
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		go func() { <-e.ready; a.release(e) }()
		return nil, false
	}
	if e.err != nil {
		return nil, false
	}
	return &aheadBody{Reader: bytes.NewReader(e.body), a: a, e: e}, true
}

func (a *ahead) release(e *aheadEntry) {
	a.mu.Lock()
	a.used -= e.size
	e.size, e.body = 0, nil
	a.signal()
	a.mu.Unlock()
}

// aheadBody is a body read ahead. Its room is given back once it is read
// to the end, not only at Close: a sink copies what it reads (an IMAP
// sink spools it for APPEND; a Maildir sink writes it out) and then
// waits on its destination, a round trip at least over a WAN, while the
// room is better used for the next bodies. Held until Close, the room
// filled with bodies already spooled, and Opens of the other folders
// fell back to a UID FETCH, a round trip, each: through 20 ms each way
// and 50 Mbit/s (TestWAN's link, 1,000 messages), 144 such FETCHes
// before, 63 after, and 10.1 s against 11.6 s.
type aheadBody struct {
	*bytes.Reader
	a    *ahead
	e    *aheadEntry
	once sync.Once
}

func (b *aheadBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		b.Close()
	}
	return n, err
}

func (b *aheadBody) WriteTo(w io.Writer) (int64, error) {
	n, err := b.Reader.WriteTo(w)
	if err == nil {
		b.Close()
	}
	return n, err
}

func (b *aheadBody) Close() error {
	b.once.Do(func() { b.a.release(b.e) })
	return nil
}

var _ source.Prefetcher = (*Store)(nil)

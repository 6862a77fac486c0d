package pop3

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/source"
)

// Pipelining (RFC 2449 §6.6): a server that says PIPELINING takes several
// commands at once and answers them in order. Describe then asks for the
// next messages the planner will describe (Prefetch says which) in one
// write, a window at a time, so the server works on one while the last
// answer crosses the wire, instead of a round trip per message. What
// arrives is kept for the Describe and Open that follow, within keptMax;
// anything that goes wrong sends Describe back to one command at a time.
const (
	pipeWindow      = 16      // commands in flight
	pipeWindowBytes = 4 << 20 // and at most this much, by LIST
)

type queued struct {
	n  int
	id string
}

// Prefetch implements source.Prefetcher: msgs are the messages the
// planner is about to describe, in that order.
func (s *Store) Prefetch(ctx context.Context, folder string, msgs []source.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ahead = s.ahead[:0]
	for _, m := range msgs {
		n, ok := s.byID[m.ID]
		if size := s.listSize(n); ok && size >= 0 && size <= describeWhole {
			s.ahead = append(s.ahead, queued{n, m.ID})
		}
	}
}

// pipeline sends TOP (the whole message) for n and the messages queued
// after it, in one write, and keeps what comes back. It returns an error
// only for a broken session; a message the server refuses, or whose TOP
// is not whole, is just not kept.
func (s *Store) pipeline(ctx context.Context, n int, id string) error {
	sess, err := s.session(ctx)
	if err != nil {
		return err
	}
	batch := []queued{{n, id}}
	bytes := s.listSize(n)
	for i, q := range s.ahead {
		if q.n != n {
			continue
		}
		for _, next := range s.ahead[i+1:] {
			if len(batch) == pipeWindow || bytes+s.listSize(next.n) > pipeWindowBytes {
				break
			}
			if _, kept := s.keptBody(next.id); !kept {
				batch = append(batch, next)
				bytes += s.listSize(next.n)
			}
		}
		break
	}
	var cmds strings.Builder
	for _, q := range batch {
		cmds.WriteString("TOP " + strconv.Itoa(q.n) + " " + peekLines + "\r\n")
	}
	sess.dc.Begin()
	defer sess.dc.End()
	if _, err := io.WriteString(sess.raw, cmds.String()); err != nil {
		s.drop()
		return fmt.Errorf("TOP: %w", err)
	}
	for _, q := range batch {
		status, err := readLine(sess.br)
		if err != nil {
			s.drop()
			return fmt.Errorf("TOP %d: %w", q.n, err)
		}
		if !strings.HasPrefix(status, "+OK") {
			continue // refused: Describe asks again, alone, and reports it
		}
		size := s.listSize(q.n)
		msg := newCapBuffer(size, 2*size+64<<10)
		if _, err := io.Copy(msg, &trailerReader{r: newDotReader(sess.br), listSize: size}); err != nil {
			bufpool.Put(msg.Bytes())
			s.drop()
			return fmt.Errorf("TOP %d: %w", q.n, err)
		}
		if int64(msg.Len()) != size {
			// Not the whole message: Describe's one-at-a-time path finds
			// out, and says so, and reads with RETR from then on.
			bufpool.Put(msg.Bytes())
			continue
		}
		s.keep(q.id, msg.Bytes())
	}
	return nil
}

var _ source.Prefetcher = (*Store)(nil)

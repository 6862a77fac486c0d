package imap

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// State implements source.Stater with one STATUS command: UIDVALIDITY,
// UIDNEXT and MESSAGES change when mail is added or removed, and
// HIGHESTMODSEQ (CONDSTORE, RFC 7162) when any flag changes. Without
// CONDSTORE a flag change would go unseen, so the answer is "" (list).
func (s *Store) State(ctx context.Context, folder string) (string, error) {
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		// What it lists changes with any label anywhere: always listed.
		return "", nil
	}
	st, err := s.status(ctx, folder, true)
	if err != nil || st == nil {
		return "", err
	}
	if st.NumMessages == nil || st.HighestModSeq == 0 {
		return "", nil
	}
	return fmt.Sprintf("imap uidvalidity=%d uidnext=%d messages=%d modseq=%d", st.UIDValidity, st.UIDNext, *st.NumMessages, st.HighestModSeq), nil
}

// Status returns folder's UIDVALIDITY, UIDNEXT and message count; exists
// is false when the server says the folder is not there. It reads them
// from a fresh EXAMINE, not STATUS: a connection that has the mailbox
// selected answers STATUS from its own session's view, which misses what
// other connections appended since (Dovecot does; RFC 3501 §6.3.10 warns
// against STATUS on the selected mailbox).
func (s *Store) Status(ctx context.Context, folder string) (uidValidity, uidNext uint32, messages int64, exists bool, err error) {
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return 0, 0, 0, false, err
	}
	cn.sel = nil
	sel, err := cn.Select(mailbox, true)
	s.Pool.Put(cn, err != nil && !isServerAnswer(err))
	var ie *imap.Error
	switch {
	case errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo:
		return 0, 0, 0, false, nil
	case err != nil:
		return 0, 0, 0, false, Transport(fmt.Errorf("folder %q: examine: %w", folder, err))
	case sel.UIDValidity == 0:
		return 0, 0, 0, false, fmt.Errorf("folder %q: EXAMINE answer without UIDVALIDITY", folder)
	}
	return sel.UIDValidity, uint32(sel.UIDNext), int64(sel.NumMessages), true, nil
}

// status runs STATUS on folder; with modseq, only on a server with
// CONDSTORE (nil, nil otherwise).
func (s *Store) status(ctx context.Context, folder string, modseq bool) (*imap.StatusData, error) {
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return nil, err
	}
	if modseq && !cn.Client().Caps().Has(imap.CapCondStore) {
		s.Pool.Put(cn, false)
		return nil, nil
	}
	var st *imap.StatusData
	err = cn.Do(func() error {
		var err error
		st, err = cn.Client().Status(mailbox, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: modseq}).Wait()
		return err
	})
	s.Pool.Put(cn, err != nil && !isServerAnswer(err))
	if isServerAnswer(err) {
		return nil, err // NO: for Status to read
	}
	if err != nil {
		return nil, Transport(fmt.Errorf("folder %q: status: %w", folder, err))
	}
	return st, nil
}

// Count implements source.Counter with STATUS (MESSAGES).
func (s *Store) Count(ctx context.Context, folder string) (int, error) {
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		keep, err := s.archived(ctx, gm)
		gm.mu.Lock()
		gm.counted = keep
		gm.mu.Unlock()
		n := 0
		for _, archived := range keep {
			if archived {
				n++
			}
		}
		return n, err
	}
	st, err := s.status(ctx, folder, false)
	if err != nil || st == nil || st.NumMessages == nil {
		return 0, err
	}
	return int(*st.NumMessages), nil
}

var (
	_ source.Stater  = (*Store)(nil)
	_ source.Counter = (*Store)(nil)
)

package imap

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// State implements source.Stater with one STATUS command: UIDVALIDITY,
// UIDNEXT and MESSAGES change when mail is added or removed, and
// HIGHESTMODSEQ (CONDSTORE, RFC 7162) when any flag changes. Without
// CONDSTORE a flag change would go unseen, so the answer is "" (list).
func (s *Store) State(ctx context.Context, folder string) (string, error) {
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return "", err
	}
	if !cn.Client().Caps().Has(imap.CapCondStore) {
		s.Pool.Put(cn, false)
		return "", nil
	}
	var st *imap.StatusData
	err = cn.Do(func() error {
		var err error
		st, err = cn.Client().Status(mailbox, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}).Wait()
		return err
	})
	s.Pool.Put(cn, err != nil && !isServerAnswer(err))
	if err != nil {
		return "", Transport(fmt.Errorf("folder %q: status: %w", folder, err))
	}
	if st.NumMessages == nil || st.HighestModSeq == 0 {
		return "", nil
	}
	return fmt.Sprintf("imap uidvalidity=%d uidnext=%d messages=%d modseq=%d", st.UIDValidity, st.UIDNext, *st.NumMessages, st.HighestModSeq), nil
}

var _ source.Stater = (*Store)(nil)

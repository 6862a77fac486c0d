package imap

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// ErrNoUIDExpunge: the server cannot expunge chosen messages (no UIDPLUS,
// RFC 4315). A plain EXPUNGE would also remove every message another
// client had marked \Deleted, so a move refuses instead.
var ErrNoUIDExpunge = errors.New("the server has no UID EXPUNGE (UIDPLUS): a plain EXPUNGE would also remove other clients' deleted messages, so nothing is deleted")

// Delete implements source.Deleter (a move): per folder, the messages are
// flagged \Deleted and removed with UID EXPUNGE of exactly their UIDs. A
// folder whose UIDVALIDITY changed since the copy is left alone: its UIDs
// may name other messages now.
func (s *Store) Delete(ctx context.Context, msgs []source.Message) error {
	byFolder := map[string][]source.Message{}
	var order []string
	for _, m := range msgs {
		if byFolder[m.Folder] == nil {
			order = append(order, m.Folder)
		}
		byFolder[m.Folder] = append(byFolder[m.Folder], m)
	}
	var errs []error
	for _, folder := range order {
		if err := s.deleteIn(ctx, folder, byFolder[folder]); err != nil {
			errs = append(errs, fmt.Errorf("folder %q: %w", folder, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) deleteIn(ctx context.Context, folder string, msgs []source.Message) error {
	cn, mailbox, err := s.conn(ctx, folder)
	if err != nil {
		return err
	}
	broken := false
	defer func() { s.Pool.Put(cn, broken) }()
	caps := cn.Client().Caps()
	if !caps.Has(imap.CapUIDPlus) && !caps.Has(imap.CapIMAP4rev2) {
		return ErrNoUIDExpunge
	}
	sel, err := cn.Select(mailbox, false)
	if err != nil {
		broken = !isServerAnswer(err)
		return fmt.Errorf("select: %w", err)
	}
	var uids imap.UIDSet
	for _, m := range msgs {
		v, uid, err := ParseID(m.ID)
		if err != nil {
			return err
		}
		if v != sel.UIDValidity {
			return fmt.Errorf("UIDVALIDITY is now %d, not %d: %w", sel.UIDValidity, v, source.ErrMessageNotFound)
		}
		uids.AddNum(uid)
	}
	err = cn.Do(func() error {
		if err := cn.Client().Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return fmt.Errorf("flag \\Deleted: %w", err)
		}
		if err := cn.Client().UIDExpunge(uids).Close(); err != nil {
			return fmt.Errorf("UID EXPUNGE: %w", err)
		}
		return nil
	})
	broken = err != nil && !isServerAnswer(err)
	return err
}

var _ source.Deleter = (*Store)(nil)

package imap

import (
	"context"
	"fmt"

	"github.com/mailferry/mailferry/sink"
)

// FolderState implements sink.FolderStater with one STATUS: UIDVALIDITY
// is the folder's identity, MESSAGES and UIDNEXT show whether anything was
// removed since (sink.FolderState.Kept).
func (s *Sink) FolderState(ctx context.Context, folder string) (sink.FolderState, error) {
	validity, next, messages, exists, err := s.Status(ctx, folder)
	if err != nil || !exists {
		return sink.FolderState{Messages: -1, Next: -1}, err
	}
	return sink.FolderState{Identity: fmt.Sprintf("imap uidvalidity=%d", validity), Messages: messages, Next: int64(next)}, nil
}

var _ sink.FolderStater = (*Sink)(nil)

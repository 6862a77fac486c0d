package sink

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mailferry/mailferry/source"
)

// ErrReadOnly is returned by a ReadOnly sink's writes.
var ErrReadOnly = errors.New("opened read-only")

// ReadOnly serves a store that is only looked at (a dry run, verify) where
// a Sink is wanted: it reads through src and refuses every write. The
// folder state is passed on when src has one, so a dry run judges the
// checkpoint's records as the copy would.
func ReadOnly(src source.Source) Sink {
	if fs, ok := src.(FolderStater); ok {
		return readOnlyStater{readOnly{src}, fs}
	}
	return readOnly{src}
}

type readOnly struct{ source.Source }

func (r readOnly) CreateFolder(_ context.Context, folder string) error {
	return fmt.Errorf("create folder %q: %w", folder, ErrReadOnly)
}

func (r readOnly) Put(_ context.Context, folder string, _ source.Message, _ io.Reader) (string, error) {
	return "", fmt.Errorf("write to %q: %w", folder, ErrReadOnly)
}

type readOnlyStater struct {
	readOnly
	fs FolderStater
}

func (r readOnlyStater) FolderState(ctx context.Context, folder string) (FolderState, error) {
	return r.fs.FolderState(ctx, folder)
}

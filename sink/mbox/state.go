package mbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/mailferry/mailferry/sink"
)

// FolderState implements sink.FolderStater: the file's device and inode,
// and its size and mtime, which any append, cut or rewrite changes.
func (s *Sink) FolderState(_ context.Context, folder string) (sink.FolderState, error) {
	path, err := s.path(folder)
	if err != nil {
		return sink.FolderState{}, err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sink.FolderState{}, nil
	}
	if err != nil {
		return sink.FolderState{}, err
	}
	if !fi.Mode().IsRegular() {
		return sink.FolderState{Messages: -1, Next: -1}, nil
	}
	return sink.FolderState{
		Identity: fileID(fi),
		Messages: -1, Next: -1,
		Stamp: fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano()),
	}, nil
}

var _ sink.FolderStater = (*Sink)(nil)

// Package atomicfile writes small files whole or not at all, durably: the
// Maildir keyword list, the failed-jobs list, a refresh token.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path through a temporary file in the same
// directory (created 0600), fsyncs it, renames it into place and fsyncs
// the directory: a crash leaves the old file or the new one, never a part.
func Write(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mailferry-tmp-*")
	if err != nil {
		// Name the file the caller asked for, not the temporary one.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return &fs.PathError{Op: "write", Path: path, Err: pe.Err}
		}
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

//go:build !linux

package maildir

import "errors"

// syncFS: elsewhere each delivery fsyncs its own file.
func syncFS(string) error { return errors.ErrUnsupported }

const haveSyncFS = false

//go:build !linux

package dovecottest

import "syscall"

// dieWithParent: only Linux has a parent-death signal; elsewhere the
// cleanup of each test stops the server.
func dieWithParent() *syscall.SysProcAttr { return nil }

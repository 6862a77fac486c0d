//go:build !unix

package maildir

import "io/fs"

// fileID has no inode to offer here: a folder made again keeps its
// identity, and only the mtimes (the Stamp) show the change.
func fileID(fs.FileInfo) string { return "?" }

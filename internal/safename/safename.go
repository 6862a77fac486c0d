// Package safename checks a folder name that becomes a path under a root:
// the one gate between a name, which may come from a remote server, and
// the file system, shared by the stores that keep folders as files.
package safename

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Problem says what makes the "/"-separated name unsafe as a path under a
// root (empty, not UTF-8, an empty, "." or ".." part, a control
// character), or "" when nothing does. Stores add the rules of their own
// layout.
func Problem(name string) string {
	if name == "" {
		return "empty name"
	}
	if !utf8.ValidString(name) {
		return fmt.Sprintf("%q is not valid UTF-8", name)
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "":
			return fmt.Sprintf("%q has an empty part", name)
		case part == "." || part == "..":
			return fmt.Sprintf("%q has a %q part", name, part)
		case strings.ContainsFunc(part, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return fmt.Sprintf("%q has a control character", name)
		}
	}
	return ""
}

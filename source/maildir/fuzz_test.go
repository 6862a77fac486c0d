package maildir

import (
	"strings"
	"testing"
)

// FuzzSplitName: any file name splits without panicking, and the ID never
// holds the info part.
func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"1.a.host:2,FRS", "x", ":2,", "a:1,b", "a:2,abc:junk", "1.M2P3,S=12,W=13:2,Sab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, letters := SplitName(name)
		if strings.Contains(id, ":") {
			t.Fatalf("ID %q of %q holds a colon", id, name)
		}
		var k Keywords
		FlagsOf(letters, &k)
	})
}

// FuzzFolderName: a folder name from a server either maps to a directory
// inside the root or is refused; it never escapes.
func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "a/b", "../x", "a/../../b", "Entwürfe", ".hidden", "a.b", "cur", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, layout := range []Layout{LayoutMaildirPP, LayoutFS, LayoutFlat} {
			dir, err := dirOf("/root/mail", layout, name)
			if err != nil {
				continue
			}
			if dir != "/root/mail" && !strings.HasPrefix(dir, "/root/mail/") {
				t.Fatalf("%q (%v) maps outside the root: %q", name, layout, dir)
			}
			if strings.Contains(dir[len("/root/mail"):], "/../") || strings.HasSuffix(dir, "/..") {
				t.Fatalf("%q (%v) maps to %q", name, layout, dir)
			}
		}
	})
}

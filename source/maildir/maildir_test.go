package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// seed writes fixtures as files, the way Dovecot or another MUA would,
// without going through mailferry's sink: flagless messages in new/ with no
// info, the rest in cur/ with ":2,", keywords through dovecot-keywords.
func seed(t *testing.T, root string, layout Layout, fx []sourcetest.Fixture) {
	t.Helper()
	kws := map[string]*Keywords{}
	for i, f := range fx {
		dir, err := dirOf(root, layout, f.Folder)
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if kws[dir] == nil {
			kws[dir] = &Keywords{}
		}
		var letters []byte
		for _, fl := range f.Flags {
			found := false
			for l, name := range letterFlags {
				if name == fl {
					letters = append(letters, l)
					found = true
				}
			}
			if !found {
				kws[dir].Add(fl)
				l, _ := kws[dir].Letter(fl)
				letters = append(letters, l)
			}
		}
		slices.Sort(letters)
		name := fmt.Sprintf("%d.M%dP1.seed", 1500000000+i, i)
		path := filepath.Join(dir, "new", name)
		if len(letters) > 0 || i%2 == 0 {
			path = filepath.Join(dir, "cur", name+":2,"+string(letters))
		}
		if err := os.WriteFile(path, f.Content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, f.Date, f.Date); err != nil {
			t.Fatal(err)
		}
	}
	for dir, k := range kws {
		if err := k.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformance(t *testing.T) {
	for _, layout := range []Layout{LayoutMaildirPP, LayoutFS, LayoutFlat} {
		t.Run(layout.String(), func(t *testing.T) {
			root := t.TempDir()
			sourcetest.Run(t, sourcetest.Opt{
				New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
					seed(t, root, layout, fx)
					s, err := Open(root, layout)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Reopen: func(t *testing.T) source.Source {
					s, err := Open(root, layout)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Remove: func(t *testing.T, m source.Message) {
					s, _ := Open(root, layout)
					p, err := s.Path(m.Folder, m.ID)
					if err != nil {
						t.Fatal(err)
					}
					os.Remove(p)
				},
			})
		})
	}
}

// The source must never change what it reads: go-maildir's Unseen moves
// new/ to cur/ and drops flags (library audit 0.9).
func TestReadingChangesNothing(t *testing.T) {
	root := t.TempDir()
	seed(t, root, LayoutMaildirPP, sourcetest.Generated("INBOX")[:4])
	before := snapshot(t, root)
	s, _ := Open(root, LayoutMaildirPP)
	err := s.List(context.Background(), "INBOX", func(m source.Message) error {
		r, err := s.Open(context.Background(), m)
		if err == nil {
			r.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, root); !slices.Equal(before, after) {
		t.Fatalf("reading changed the maildir:\n%q\n%q", before, after)
	}
}

func snapshot(t *testing.T, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out = append(out, fmt.Sprintf("%s %d %v", p, fi.Size(), fi.ModTime().UnixNano()))
		}
		return err
	})
	return out
}

// Files go-maildir's Walk skips (library audit 0.10) are messages too; dot
// files and directories are not.
func TestOddNames(t *testing.T) {
	root := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(root, sub), 0o700)
	}
	files := map[string][]string{
		"cur/1.a.host":          nil,                    // no info in cur/
		"cur/2.a.host:1,xyz":    nil,                    // experimental info
		"cur/3.a.host:2,":       nil,                    // empty flags
		"cur/4.a.host:2,SRz":    {`\Answered`, `\Seen`}, // z has no keyword: dropped
		"cur/5.a.host:2,PTDF":   {`\Deleted`, `\Draft`, `\Flagged`, "$Forwarded"},
		"cur/6.a,S=12,W=13:2,S": {`\Seen`}, // Dovecot size fields stay in the ID
		"new/7.a.host":          nil,
		"new/8.a.host:2,S":      {`\Seen`}, // flags in new/ are kept
		"cur/.hidden":           nil,
		"tmp/9.a.host":          nil,
	}
	for name := range files {
		os.WriteFile(filepath.Join(root, name), []byte("Subject: x\n\n"), 0o600)
	}
	os.Mkdir(filepath.Join(root, "cur", "adir"), 0o700)
	s, _ := Open(root, LayoutMaildirPP)
	got := map[string][]string{}
	err := s.List(context.Background(), "INBOX", func(m source.Message) error {
		got[m.ID] = m.Flags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for name, flags := range files {
		base := filepath.Base(name)
		if strings.HasPrefix(base, ".") || strings.HasPrefix(name, "tmp/") {
			continue
		}
		id, _ := SplitName(base)
		want[id] = flags
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d messages %v, want %d", len(got), got, len(want))
	}
	for id, flags := range want {
		if g, ok := got[id]; !ok || !source.SameFlags(g, flags) {
			t.Errorf("%s: flags %q (listed %v), want %q", id, g, ok, flags)
		}
	}
}

func TestFolderNames(t *testing.T) {
	tests := []struct {
		layout Layout
		name   string
		dir    string
	}{
		{LayoutMaildirPP, "INBOX", ""},
		{LayoutMaildirPP, "inbox", ""},
		{LayoutMaildirPP, "Sent", ".Sent"},
		{LayoutMaildirPP, "Archive/2024", ".Archive.2024"},
		{LayoutMaildirPP, "Entwürfe/AT&T", ".Entw&APw-rfe.AT&-T"},
		{LayoutFS, "Archive/2024", "Archive/2024"},
		{LayoutFS, "Entwürfe", "Entwürfe"},
		{LayoutFS, "a.b", "a.b"},
		{LayoutFlat, "INBOX", "INBOX"},
		{LayoutFlat, "Archive/2024", "Archive.2024"},
		{LayoutFlat, "Entwürfe/AT&T", "Entw&APw-rfe.AT&-T"},
	}
	for _, tt := range tests {
		got, err := dirOf("/r", tt.layout, tt.name)
		if want := filepath.Join("/r", tt.dir); err != nil || got != want {
			t.Errorf("dirOf(%v, %q) = %q, %v; want %q", tt.layout, tt.name, got, err, want)
		}
	}
	// Names that could escape the root, or that the layout cannot hold.
	for _, tt := range []struct {
		layout Layout
		name   string
	}{
		{LayoutFS, ".."}, {LayoutFS, "a/../../etc"}, {LayoutFS, "/abs"}, {LayoutFS, "a//b"},
		{LayoutFS, "a/cur"}, {LayoutFS, "tmp"}, {LayoutFS, "bad\x01name"}, {LayoutFS, "x\n"},
		{LayoutMaildirPP, "a.b"}, {LayoutMaildirPP, ".."}, {LayoutMaildirPP, "a/.."}, {LayoutMaildirPP, ""},
		{LayoutMaildirPP, "\xff"},
		{LayoutFlat, "a.b"}, {LayoutFlat, ".."}, {LayoutFlat, "a/.."},
	} {
		if got, err := dirOf("/r", tt.layout, tt.name); err == nil {
			t.Errorf("dirOf(%v, %q) = %q, want an error", tt.layout, tt.name, got)
		}
	}
}

func TestFoldersListing(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cur", ".Sent/cur", ".Entw&APw-rfe.Sub/cur", ".raw-ü/cur", ".notafolder", "..weird/cur"} {
		os.MkdirAll(filepath.Join(root, d), 0o700)
	}
	s, _ := Open(root, LayoutMaildirPP)
	fs, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	want := []string{"/weird", "Entwürfe/Sub", "INBOX", "Sent", "raw-ü"}
	if !slices.Equal(names, want) {
		t.Fatalf("Folders = %q, want %q", names, want)
	}
}

func TestKeywordsFile(t *testing.T) {
	dir := t.TempDir()
	// Dovecot's format; a malformed line and an out-of-range index are ignored.
	os.WriteFile(filepath.Join(dir, KeywordsFile), []byte("0 $Label1\n2 Work\nbad line\n30 x\n1 $Junk\n"), 0o600)
	k, err := ReadKeywords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := k.Letter("$label1"); !ok || l != 'a' {
		t.Errorf("Letter($label1) = %c, %v", l, ok)
	}
	if l, ok := k.Letter("Work"); !ok || l != 'c' {
		t.Errorf("Letter(Work) = %c, %v", l, ok)
	}
	if got := FlagsOf("Sabc", &k); !slices.Equal(got, []string{"$Junk", "$Label1", "Work", `\Seen`}) {
		t.Errorf("FlagsOf = %q", got)
	}
	for i := 0; i < 23; i++ {
		if _, err := k.Add(fmt.Sprintf("k%d", i)); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	if _, err := k.Add("one-too-many"); err == nil {
		t.Fatal("27th keyword accepted")
	}
	if err := k.Write(dir); err != nil {
		t.Fatal(err)
	}
	k2, _ := ReadKeywords(dir)
	if k2 != k {
		t.Fatalf("keywords changed in a write/read round trip")
	}
}

func TestDatesAreMtimes(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "cur"), 0o700)
	p := filepath.Join(root, "cur", "1.x:2,S")
	os.WriteFile(p, []byte("Subject: x\n\n"), 0o600)
	when := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	os.Chtimes(p, when, when)
	s, _ := Open(root, LayoutMaildirPP)
	s.List(context.Background(), "INBOX", func(m source.Message) error {
		if !m.Date.Equal(when) {
			t.Errorf("Date = %v, want %v", m.Date, when)
		}
		return nil
	})
}

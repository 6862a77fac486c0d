package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/source"
)

// mkFolder makes a Maildir folder directory at dir holding one message.
func mkFolder(t *testing.T, dir, body string) {
	t.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cur", "1.M1P1Q1.host:2,S"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Every folder directory of a tree is read, once, under a name of its own:
// names that decode alike are not merged, raw UTF-8 and names that are not
// modified UTF-7 are read from the directory they came from, and an fs
// layout "Inbox/" is not taken for the root INBOX.
func TestFolderNamesOneToOne(t *testing.T) {
	tests := []struct {
		name   string
		layout Layout
		dirs   map[string]string // directory (relative) -> body
		want   map[string]string // folder -> body
	}{
		{"maildir++", LayoutMaildirPP, map[string]string{
			"": "inbox", ".&AOk-": "utf7", ".é": "raw", ".Entwürfe": "raw drafts", ".R&D": "not utf7", ".A.B": "nested",
		}, map[string]string{
			"INBOX": "inbox", "é": "utf7", "é (2)": "raw", "Entwürfe": "raw drafts", "R&D": "not utf7", "A/B": "nested",
		}},
		{"fs with an Inbox folder", LayoutFS, map[string]string{
			"": "inbox", "Inbox": "a folder named Inbox", "Work/2024": "work",
		}, map[string]string{
			"INBOX": "inbox", "Inbox (2)": "a folder named Inbox", "Work/2024": "work",
		}},
		{"OfflineIMAP: flat, '.' between levels, modified UTF-7", LayoutFlat, map[string]string{
			"INBOX": "inbox", "Archive": "archive", "Archive.2024": "nested", "Entw&APw-rfe": "drafts", "R&-D": "r and d", ".hidden": "not a folder",
		}, map[string]string{
			"INBOX": "inbox", "Archive": "archive", "Archive/2024": "nested", "Entwürfe": "drafts", "R&D": "r and d",
		}},
		{"mbsync: INBOX beside the folders", LayoutFS, map[string]string{
			"INBOX": "inbox", "Archive": "archive", "Sent": "sent",
		}, map[string]string{
			"INBOX": "inbox", "Archive": "archive", "Sent": "sent",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for d, body := range tt.dirs {
				mkFolder(t, filepath.Join(root, d), body)
			}
			s, err := Open(root, tt.layout)
			if err != nil {
				t.Fatal(err)
			}
			folders, err := s.Folders(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range folders {
				names = append(names, f.Name)
			}
			if len(names) != len(tt.want) {
				t.Fatalf("folders %q, want %d", names, len(tt.want))
			}
			for _, name := range names {
				var got []string
				err := s.List(context.Background(), name, func(m source.Message) error {
					r, err := s.Open(context.Background(), m)
					if err != nil {
						return err
					}
					defer r.Close()
					b := make([]byte, 100)
					n, _ := r.Read(b)
					got = append(got, string(b[:n]))
					return nil
				})
				if err != nil {
					t.Fatalf("%q: %v", name, err)
				}
				if want, ok := tt.want[name]; !ok || !slices.Equal(got, []string{want}) {
					t.Errorf("folder %q holds %q, want %q", name, got, tt.want[name])
				}
			}
		})
	}
}

// A tree never leads a read outside itself: a folder whose directory,
// cur/ or new/ is a symbolic link is left out, and the others are read.
func TestSymlinksNotFollowed(t *testing.T) {
	outside := t.TempDir()
	mkFolder(t, outside, "secret from outside the tree")
	for _, layout := range []Layout{LayoutMaildirPP, LayoutFS} {
		root := t.TempDir()
		mkFolder(t, root, "inbox")
		prefix := map[Layout]string{LayoutMaildirPP: ".", LayoutFS: ""}[layout]
		os.Symlink(outside, filepath.Join(root, prefix+"Linked"))
		mkFolder(t, filepath.Join(root, prefix+"CurLink"), "x")
		os.RemoveAll(filepath.Join(root, prefix+"CurLink", "cur"))
		os.Symlink(filepath.Join(outside, "cur"), filepath.Join(root, prefix+"CurLink", "cur"))
		mkFolder(t, filepath.Join(root, prefix+"NewLink"), "y")
		os.RemoveAll(filepath.Join(root, prefix+"NewLink", "new"))
		os.Symlink(filepath.Join(outside, "cur"), filepath.Join(root, prefix+"NewLink", "new"))
		s, err := Open(root, layout)
		if err != nil {
			t.Fatal(err)
		}
		folders, err := s.Folders(context.Background())
		if err != nil || len(folders) != 1 || folders[0].Name != "INBOX" {
			t.Fatalf("%v: folders %+v, %v", layout, folders, err)
		}
		for _, f := range []string{"Linked", "CurLink", "NewLink"} {
			if err := s.List(context.Background(), f, func(source.Message) error { return nil }); err == nil {
				t.Errorf("%v: %s listed", layout, f)
			}
		}
	}
}

// TestOtherLayoutNamed: a tree that holds no folder in the layout given,
// but does in another, is an error naming the layouts that read it, not
// an empty store.
func TestOtherLayoutNamed(t *testing.T) {
	tests := []struct {
		name   string
		layout Layout
		dirs   []string
		want   string // in the error; "" for no error
	}{
		{"OfflineIMAP tree read as Maildir++", LayoutMaildirPP, []string{"INBOX", "Archive.2024"}, "?layout=flat"},
		{"Maildir++ tree read as flat", LayoutFlat, []string{".Sent"}, "?layout=maildir++"},
		{"an empty directory", LayoutMaildirPP, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.dirs {
				mkFolder(t, filepath.Join(root, d), d)
			}
			s, err := Open(root, tt.layout)
			if err != nil {
				t.Fatal(err)
			}
			folders, err := s.Folders(context.Background())
			switch {
			case tt.want == "" && (err != nil || len(folders) != 0):
				t.Errorf("got %v, %v; want no folder and no error", folders, err)
			case tt.want != "" && (!errors.Is(err, source.ErrOtherLayout) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v; want ErrOtherLayout naming %s", err, tt.want)
			}
		})
	}
}

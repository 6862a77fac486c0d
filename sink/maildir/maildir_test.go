package maildir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

func TestConformance(t *testing.T) {
	for _, layout := range []srcmaildir.Layout{srcmaildir.LayoutMaildirPP, srcmaildir.LayoutFS, srcmaildir.LayoutFlat} {
		t.Run(layout.String(), func(t *testing.T) {
			var root string
			open := func(t *testing.T) *Sink {
				s, err := New(root, layout, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			sinktest.Run(t, sinktest.Opt{
				New: func(t *testing.T) sink.Sink {
					root = filepath.Join(t.TempDir(), "mail")
					return open(t)
				},
				Reopen: func(t *testing.T) sink.Sink { return open(t) },
				Remove: func(t *testing.T, m source.Message) {
					p, err := open(t).Path(m.Folder, m.ID)
					if err != nil {
						t.Fatal(err)
					}
					os.Remove(p)
				},
			})
		})
	}
}

func newSink(t *testing.T) (*Sink, string) {
	root := filepath.Join(t.TempDir(), "mail")
	s, err := New(root, srcmaildir.LayoutMaildirPP, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestFilesArePrivateAndLF(t *testing.T) {
	s, root := newSink(t)
	when := time.Date(2011, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600))
	body := "Subject: x\r\nMessage-ID: <a@b>\r\n\r\nline\r\nlone\rcr\r\n"
	id, err := s.Put(context.Background(), "Sub/Folder", source.Message{Flags: []string{`\Seen`, "Work"}, Date: when, Size: int64(len(body))}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Path("Sub/Folder", id)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("message mode %v, want 0600", fi.Mode().Perm())
	}
	if !fi.ModTime().Equal(when) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), when)
	}
	if !strings.HasSuffix(p, ":2,Sa") || filepath.Base(filepath.Dir(p)) != "cur" {
		t.Errorf("delivered as %s, want cur/...:2,Sa", p)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "Subject: x\nMessage-ID: <a@b>\n\nline\nlone\rcr\n" {
		t.Errorf("stored %q: want LF line endings, lone CR kept", got)
	}
	kw, _ := os.ReadFile(filepath.Join(root, ".Sub.Folder", "dovecot-keywords"))
	if string(kw) != "0 Work\n" {
		t.Errorf("dovecot-keywords = %q", kw)
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi.IsDir() && fi.Mode().Perm() != 0o700 {
			t.Errorf("directory %s mode %v, want 0700", p, fi.Mode().Perm())
		}
		if !fi.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("file %s mode %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(root, ".Sub.Folder", "maildirfolder")); err != nil {
		t.Errorf("no maildirfolder marker: %v", err)
	}
}

// A failed write publishes nothing and leaves nothing in tmp/ (go-maildir
// v0.6.0 publishes partial and 0-byte messages: library audit 0.7).
func TestFailedWriteLeavesNothing(t *testing.T) {
	s, root := newSink(t)
	r := io.MultiReader(strings.NewReader("Subject: partial\n\nhalf"), iotest.ErrReader(errors.New("network gone")))
	if _, err := s.Put(context.Background(), "INBOX", source.Message{Size: 1000}, r); err == nil {
		t.Fatal("Put succeeded")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(root, sub))
		if len(ents) != 0 {
			t.Errorf("%s/ holds %d files after a failed Put", sub, len(ents))
		}
	}
}

func TestSetFlagsKeepsID(t *testing.T) {
	s, _ := newSink(t)
	ctx := context.Background()
	id, err := s.Put(ctx, "INBOX", source.Message{Size: 3}, bytes.NewReader([]byte("a\n\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{{`\Seen`}, {`\Seen`, "$Label1", `\Flagged`}, nil} {
		if err := s.SetFlags(ctx, "INBOX", id, flags); err != nil {
			t.Fatal(err)
		}
		var got []source.Message
		s.List(ctx, "INBOX", func(m source.Message) error { got = append(got, m); return nil })
		if len(got) != 1 || got[0].ID != id || !source.SameFlags(got[0].Flags, flags) {
			t.Fatalf("after SetFlags(%q): %+v", flags, got)
		}
	}
	if err := s.SetFlags(ctx, "INBOX", "no-such-id", nil); !errors.Is(err, source.ErrMessageNotFound) {
		t.Fatalf("SetFlags of a missing message: %v", err)
	}
	// Once the folder is released (the run moved on), its files are found
	// on disk.
	s.Release("INBOX")
	if err := s.SetFlags(ctx, "INBOX", id, []string{`\Answered`}); err != nil {
		t.Fatalf("SetFlags after Release: %v", err)
	}
	p, err := s.Path("INBOX", id)
	if err != nil || !strings.HasSuffix(p, ":2,R") {
		t.Fatalf("after Release and SetFlags: %q, %v", p, err)
	}
}

func TestTooManyKeywordsKeepsMessage(t *testing.T) {
	s, _ := newSink(t)
	var flags []string
	for i := range 30 {
		flags = append(flags, "kw"+string(rune('A'+i)))
	}
	id, err := s.Put(context.Background(), "INBOX", source.Message{Flags: flags, Size: 3}, strings.NewReader("a\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	s.List(context.Background(), "INBOX", func(m source.Message) error {
		n = len(m.Flags)
		if m.ID != id {
			t.Errorf("listed %q, want %q", m.ID, id)
		}
		return nil
	})
	if n != 26 {
		t.Fatalf("stored %d keywords, want the 26 a Maildir folder can hold", n)
	}
}

// Leftovers of a killed run are removed from tmp/ once stale by ctime; a
// file whose mtime is old but which was just written (a delivery in flight:
// mtime is set to the received date before the rename) is left alone.
func TestStaleTmpCleaned(t *testing.T) {
	for _, tt := range []struct {
		maxAge time.Duration
		kept   bool
	}{{36 * time.Hour, true}, {-time.Second, false}} {
		root := filepath.Join(t.TempDir(), "mail")
		os.MkdirAll(filepath.Join(root, "tmp"), 0o700)
		f := filepath.Join(root, "tmp", "1.inflight.host")
		os.WriteFile(f, []byte("half a message"), 0o600)
		old := time.Now().Add(-48 * time.Hour)
		os.Chtimes(f, old, old)
		tmpMaxAge = tt.maxAge
		s, err := New(root, srcmaildir.LayoutMaildirPP, nil)
		if err == nil {
			err = s.CreateFolder(context.Background(), "INBOX")
		}
		tmpMaxAge = 36 * time.Hour
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f); (err == nil) != tt.kept {
			t.Errorf("max age %v: tmp file kept = %v, want %v", tt.maxAge, err == nil, tt.kept)
		}
	}
}

func TestRefusesUnsafeFolder(t *testing.T) {
	s, root := newSink(t)
	for _, f := range []string{"../escape", "a/../../b", "x.y", "ctl\x07"} {
		if _, err := s.Put(context.Background(), f, source.Message{Size: 3}, strings.NewReader("a\n\n")); !errors.Is(err, srcmaildir.ErrBadFolderName) {
			t.Errorf("Put to %q: %v, want ErrBadFolderName", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Fatal("a folder was created outside the root")
	}
}

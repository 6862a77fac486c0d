package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/mbox"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// mboxTree writes fixtures as a Thunderbird-style tree of mboxrd files
// (folder "A/B" is "A.sbd/B"); mbox keeps no message without a final line
// end, so those gain one, in the returned fixtures too. Flags are dropped:
// plain mbox keeps them in headers (see source/mbox's tests).
func mboxTree(t *testing.T, dir string, fx []sourcetest.Fixture) []sourcetest.Fixture {
	t.Helper()
	out := slices.Clone(fx)
	files := map[string][]byte{}
	for i, f := range out {
		if len(f.Content) > 0 && f.Content[len(f.Content)-1] != '\n' {
			out[i].Content = append(slices.Clip(f.Content), '\n')
		}
		out[i].Flags = nil
		p := mbox.TreePath(dir, f.Folder)
		var buf bytes.Buffer
		mbox.Append(&buf, "sender@example.com", f.Date, f.Content)
		files[p] = append(files[p], buf.Bytes()...)
	}
	for p, b := range files {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A Thunderbird-style tree of the whole corpus to Maildir (every message,
// NULs too) and to Dovecot over IMAP (all IMAP can carry), byte for byte
// with folders and received dates; re-runs copy nothing.
func TestMboxEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "Local Folders")
	fx := mboxTree(t, tree, sourcetest.DefaultFixtures(t))
	srcURL := "mbox:" + tree + "?format=mboxrd"

	t.Run("ToMaildir", func(t *testing.T) {
		dst := filepath.Join(dir, "maildir")
		ckpt := filepath.Join(dir, "m.ckpt")
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
			NoFlags:  true,
			New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
				sum := copyJSON(t, "copy", srcURL, "maildir:"+dst, "--dedup", "none", "--checkpoint", ckpt)
				if sum.Copied != len(fx) || sum.Failed != 0 {
					t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(fx), sum.Failed, sum.Errors)
				}
				s, err := srcmaildir.Open(dst, srcmaildir.LayoutMaildirPP)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		})
		if sum := copyJSON(t, "copy", srcURL, "maildir:"+dst, "--dedup", "none", "--checkpoint", ckpt); sum.Copied != 0 || sum.AlreadyPresent != len(fx) {
			t.Fatalf("re-run: copied %d, present %d of %d", sum.Copied, sum.AlreadyPresent, len(fx))
		}
	})

	t.Run("ToIMAP", func(t *testing.T) {
		srv := dovecottest.Start(t, dovecottest.Options{})
		user := srv.NewUser(t)
		t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
		carried, refused := imapCarried(fx)
		ckpt := filepath.Join(dir, "i.ckpt")
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return carried },
			NoFlags:  true,
			New: func(t *testing.T, _ []sourcetest.Fixture) source.Source {
				code, out, stderr := cli(t, "copy", srcURL, imapURL(srv, user), "--dedup", "none", "--checkpoint", ckpt, "--json")
				if code != exitIncomplete || !strings.Contains(out, `"copied": `+strconv.Itoa(len(carried))) || !strings.Contains(out, `"failed": `+strconv.Itoa(refused)) {
					t.Fatalf("exit %d (want 3: %d refused by name), summary %s\n%s", code, refused, out, stderr)
				}
				return imapStore(t, srv, user)
			},
		})
	})
}

var bytesRead = regexp.MustCompile(`bytes_read=(\d+)`)

func takeoutMessage(i int, labels string) []byte {
	return []byte(fmt.Sprintf("X-GM-THRID: %d\r\nX-Gmail-Labels: %s\r\nMessage-ID: <takeout%d@example.com>\r\nSubject: message %d\r\n\r\n%s", 1000+i, labels, i, i, strings.Repeat("a line of the body of a message from Takeout\r\n", 50)))
}

// A Google Takeout file to Dovecot: labels become folders (Spam lands in
// the server's \Junk folder), Opened is \Seen; appended mail is copied on
// the next run, which reads only the tail of the file.
func TestTakeoutToIMAP(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	dir := t.TempDir()
	file := filepath.Join(dir, "All mail Including Spam and Trash.mbox")
	labels := []string{"Inbox,Opened", "Sent,Opened", "Spam,Unread", "Opened,Work,Inbox", "Archived,Opened"}
	var buf bytes.Buffer
	for i := range 500 {
		mbox.Append(&buf, "1@xxx", time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Hour), takeoutMessage(i, labels[i%len(labels)]))
	}
	os.WriteFile(file, buf.Bytes(), 0o600)
	// The server has a \Junk folder (Dovecot makes special-use folders
	// only when asked to).
	c, err := imapclientDial(srv, user)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Junk", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ckpt := filepath.Join(dir, "t.ckpt")
	run := func() (copied, present int, read int64) {
		t.Helper()
		code, out, stderr := cli(t, "copy", "mbox:"+file, imapURL(srv, user), "--checkpoint", ckpt, "--json", "--verbose")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		m := bytesRead.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no bytes_read in the log:\n%s", stderr)
		}
		read, _ = strconv.ParseInt(m[1], 10, 64)
		c := regexp.MustCompile(`"copied": (\d+)`).FindStringSubmatch(out)
		p := regexp.MustCompile(`"already_present": (\d+)`).FindStringSubmatch(out)
		copied, _ = strconv.Atoi(c[1])
		present, _ = strconv.Atoi(p[1])
		return
	}
	// 500 messages; those labelled Inbox and Work are in two folders.
	if copied, _, read := run(); copied != 600 || read < int64(buf.Len()) {
		t.Fatalf("first run: copied %d (want 600), read %d of %d bytes", copied, read, buf.Len())
	}
	counts := map[string]int{}
	dst := imapStore(t, srv, user)
	ctx := context.Background()
	for _, f := range []string{"INBOX", "Sent", "Junk", "Work", "Archive"} {
		err := dst.List(ctx, f, func(m source.Message) error {
			counts[f]++
			if seen := slices.Contains(m.Flags, source.FlagSeen); seen == (f == "Junk") {
				t.Errorf("%s: flags %q", f, m.Flags)
			}
			r, err := dst.Open(ctx, m)
			if err != nil {
				return err
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if !bytes.HasPrefix(b, []byte("X-GM-THRID: ")) || !bytes.Contains(b, []byte("X-Gmail-Labels: ")) {
				t.Errorf("%s: message altered: %q", f, b[:40])
			}
			return nil
		})
		if err != nil {
			t.Fatalf("list %s: %v", f, err)
		}
	}
	if want := map[string]int{"INBOX": 200, "Sent": 100, "Junk": 100, "Work": 100, "Archive": 100}; !maps.Equal(counts, want) {
		t.Fatalf("folders: %v, want %v", counts, want)
	}

	f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	var tail bytes.Buffer
	for i := 500; i < 505; i++ {
		mbox.Append(&tail, "1@xxx", time.Now(), takeoutMessage(i, "Inbox"))
	}
	f.Write(tail.Bytes())
	f.Close()
	copied, present, read := run()
	if copied != 5 || present != 600 {
		t.Fatalf("after appending 5: copied %d, present %d", copied, present)
	}
	if limit := int64(200<<10 + tail.Len()); read > limit {
		t.Fatalf("re-run read %d bytes of a %d-byte file to find %d appended bytes", read, buf.Len()+tail.Len(), tail.Len())
	}
	if copied, _, read := run(); copied != 0 || read > 200<<10 {
		t.Fatalf("no-op re-run: copied %d, read %d bytes", copied, read)
	}
}

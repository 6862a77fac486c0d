package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// A backup removed, or a folder of it emptied, after a run is filled again
// by the next run, with the recopied messages counted in the verdict: exit
// 0 means the messages are there now, not that they once were.
func TestWipedBackupIsRefilled(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "backup")
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	args := []string{"copy", "maildir:examples/sample-maildir", "maildir:" + dst, "--checkpoint", ckpt}
	if sum := copyJSON(t, args...); sum.Copied != 7 {
		t.Fatalf("first run copied %d", sum.Copied)
	}
	os.RemoveAll(dst)
	code, _, stderr := cli(t, args...)
	if code != exitOK || !strings.Contains(stderr, "7 copied") || !strings.Contains(stderr, "7 of them copied again") {
		t.Fatalf("after removing the backup: exit %d\n%s", code, stderr)
	}
	if n := sourcetest.CountMaildir(dst); n != 7 {
		t.Fatalf("the backup holds %d messages, want 7", n)
	}
	files, _ := filepath.Glob(filepath.Join(dst, ".Sent", "cur", "*"))
	for _, f := range files {
		os.Remove(f)
	}
	if sum := copyJSON(t, args...); sum.Copied != 1 || sum.Recopied != 1 || sum.AlreadyPresent != 6 {
		t.Fatalf("after emptying Sent: %+v", sum)
	}
	if code, out, stderr := cli(t, "verify", "maildir:examples/sample-maildir", "maildir:"+dst); code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
}

// A checkpoint cut to nothing is reported as damaged, never taken as a
// fresh start.
func TestEmptyCheckpointRefused(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "job.ckpt")
	os.WriteFile(ckpt, nil, 0o600)
	code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+t.TempDir(), "--checkpoint", ckpt)
	if code != exitFailed || !strings.Contains(stderr, "damaged") || !strings.Contains(stderr, "empty") || !strings.Contains(stderr, "move the checkpoint file aside") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}

// Against Dovecot: an IMAP destination whose INBOX was emptied, whose folder
// was deleted and made again (a new UIDVALIDITY), or whose account was made
// anew, is filled again; one that only received mail of its own is
// believed without a listing and nothing is copied.
func TestIMAPDestinationLossIsRefilled(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	srcDir := filepath.Join(t.TempDir(), "src")
	s, err := sinkmaildirNew(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	fx := append(fewFixtures("INBOX", 12), fewFixtures("Box", 8)...)
	sinktest.Put(t, s, fx)
	count := func(user, folder string) int {
		n := 0
		imapStore(t, srv, user).List(context.Background(), folder, func(source.Message) error { n++; return nil })
		return n
	}
	deleteFolder := func(user, folder string) {
		st := imapStore(t, srv, user)
		cn, err := st.Pool.Get(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := cn.Do(func() error { return cn.Client().Delete(folder).Wait() }); err != nil {
			t.Fatal(err)
		}
		st.Pool.Put(cn, false)
	}
	for _, tc := range []struct {
		name     string
		change   func(user string)
		recopied int
	}{
		{"INBOX emptied", func(user string) {
			if out, err := srv.Doveadm("expunge", "-u", user, "mailbox", "INBOX", "all"); err != nil {
				t.Fatalf("doveadm: %v %s", err, out)
			}
		}, 12},
		{"folder deleted and made again", func(user string) {
			deleteFolder(user, "Box")
			sinktest.Put(t, imapStore(t, srv, user), []sourcetest.Fixture{{Name: "own", Folder: "Box", Content: []byte("Subject: own\r\n\r\nmail of its own\r\n")}})
		}, 8},
		{"account made anew", func(user string) {
			os.RemoveAll(srv.Maildir(user))
			os.MkdirAll(srv.Maildir(user), 0o700)
			srv.Own(t, user)
		}, 20},
		{"mail of its own arrives", func(user string) {
			srv.Deliver(t, user, [][]byte{[]byte("Subject: new\r\n\r\ndelivered at the new server\r\n")}, nil)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := srv.NewUser(t)
			ckpt := filepath.Join(t.TempDir(), "ckpt")
			args := []string{"copy", "maildir:" + srcDir, imapURL(srv, user), "--checkpoint", ckpt}
			if sum := copyJSON(t, args...); sum.Copied != 20 {
				t.Fatalf("first run copied %d", sum.Copied)
			}
			tc.change(user)
			sum := copyJSON(t, args...)
			if sum.Copied != tc.recopied || sum.Recopied != tc.recopied || sum.Failed != 0 {
				t.Fatalf("copied %d, recopied %d, failed %d; want %d copied again", sum.Copied, sum.Recopied, sum.Failed, tc.recopied)
			}
			own := map[string]int{"folder deleted and made again": 1}[tc.name]
			inbox := map[string]int{"mail of its own arrives": 1}[tc.name]
			if n, b := count(user, "INBOX"), count(user, "Box"); n != 12+inbox || b != 8+own {
				t.Fatalf("the server holds %d in INBOX and %d in Box, want %d and %d", n, b, 12+inbox, 8+own)
			}
			if sum := copyJSON(t, args...); sum.Copied != 0 || sum.AlreadyPresent != 20 {
				t.Fatalf("the run after: %+v", sum)
			}
		})
	}
}

// A POP3 backup leaves the mailbox as it was: Dovecot marks a message
// \Seen when RETR retrieves it, so messages are read with TOP of every
// line instead, and the user's unread mail stays unread.
func TestPOP3BackupLeavesMailUnread(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	var msgs [][]byte
	for i := range 6 {
		msgs = append(msgs, fmt.Appendf(nil, "Message-ID: <%d@unread.test>\r\nSubject: %d\r\n\r\nunread %d\r\n", i, i, i))
	}
	srv.Deliver(t, user, msgs, nil)
	seen := func() int {
		n := 0
		imapStore(t, srv, user).List(context.Background(), "INBOX", func(m source.Message) error {
			if slices.Contains(m.Flags, source.FlagSeen) {
				n++
			}
			return nil
		})
		return n
	}
	if n := seen(); n != 0 {
		t.Fatalf("%d messages seen before the backup", n)
	}
	dst := filepath.Join(t.TempDir(), "backup")
	if sum := copyJSON(t, "copy", pop3URL(srv, user), "maildir:"+dst); sum.Copied != 6 {
		t.Fatalf("copied %d", sum.Copied)
	}
	if n := seen(); n != 0 {
		t.Fatalf("the backup marked %d of 6 messages read", n)
	}
	if code, out, stderr := cli(t, "verify", pop3URL(srv, user), "maildir:"+dst, "--deep"); code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
}

// Nothing selected is an error that names what was asked and what is
// there; an empty source that is a mailbox is fine.
func TestNothingSelected(t *testing.T) {
	notMaildir := t.TempDir()
	os.MkdirAll(filepath.Join(notMaildir, "photos"), 0o700)
	empty := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(empty, d), 0o700)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"a folder typo", []string{"maildir:examples/sample-maildir", "--folder", "Projekts"}, exitUsage, []string{`"Projekts"`, `"INBOX"`, `"Sent"`}},
		{"one of two patterns", []string{"maildir:examples/sample-maildir", "--folder", "Sent", "--folder", "Nope*"}, exitUsage, []string{`"Nope*"`}},
		{"not a Maildir", []string{"maildir:" + notMaildir}, exitUsage, []string{notMaildir, "no mailbox"}},
		{"an empty Maildir", []string{"maildir:" + empty}, exitOK, []string{"0 copied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"copy"}, tc.args[0], "maildir:"+filepath.Join(t.TempDir(), "d"), "--checkpoint", filepath.Join(t.TempDir(), "c"))
			code, _, stderr := cli(t, append(args, tc.args[1:]...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			for _, s := range tc.says {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

// verify with the copy's arguments checks what that copy promised: its
// prefix, its folders and its filters; a flag about writing is refused.
func TestVerifyAppliesTheCopysSelection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		folders int
	}{
		{"prefix", []string{"--prefix", "Restored/2026-12-01"}, 4},
		{"one folder", []string{"--folder", "INBOX"}, 1},
		{"since", []string{"--since", "2024-01-01"}, 4},
		{"exclude", []string{"--exclude", "Archive*"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := "maildir:" + filepath.Join(t.TempDir(), "d")
			args := append([]string{"maildir:examples/sample-maildir", dst}, tc.args...)
			if code, _, stderr := cli(t, append(append([]string{"copy"}, args...), "--checkpoint", filepath.Join(t.TempDir(), "c"))...); code != exitOK {
				t.Fatalf("copy: exit %d\n%s", code, stderr)
			}
			code, out, stderr := cli(t, append(append([]string{"verify"}, args...), "--json")...)
			var sum plan.VerifySummary
			json.Unmarshal([]byte(out), &sum)
			if code != exitOK || sum.Missing != 0 || len(sum.Folders) != tc.folders || sum.Present == 0 {
				t.Fatalf("verify: exit %d, %d folders, %d present, %d missing\n%s%s", code, len(sum.Folders), sum.Present, sum.Missing, out, stderr)
			}
		})
	}
	code, _, stderr := cli(t, "verify", "maildir:examples/sample-maildir", "maildir:"+t.TempDir(), "--delete-after-copy")
	if code != exitUsage || !strings.Contains(stderr, "--delete-after-copy") {
		t.Fatalf("verify --delete-after-copy: exit %d\n%s", code, stderr)
	}
}

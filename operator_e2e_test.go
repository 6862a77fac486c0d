package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// imapCounts counts the messages of user's folders, and those flagged
// \Deleted.
func imapCounts(t *testing.T, srv *dovecottest.Server, user string, folders ...string) (counts map[string]int, deleted int) {
	t.Helper()
	counts = map[string]int{}
	st := imapStore(t, srv, user)
	for _, f := range folders {
		err := st.List(context.Background(), f, func(m source.Message) error {
			counts[f]++
			if slices.Contains(m.Flags, source.FlagDeleted) {
				deleted++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("list %s: %v", f, err)
		}
	}
	return counts, deleted
}

// A move from IMAP deletes at the source exactly what it copied, with UID
// EXPUNGE of those UIDs: a message another client flagged \Deleted, which
// a filter kept out of the move, is still there afterwards (a plain
// EXPUNGE would have taken it).
func TestMoveFromIMAP(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	src := srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	fx := append(fewFixtures("INBOX", 10), fewFixtures("Archive/2023", 5)...)
	big := sourcetest.Fixture{Name: "big", Folder: "INBOX", Content: []byte("Message-ID: <big@x>\r\nSubject: big, deleted by another client\r\n\r\n" + strings.Repeat("0123456789\r\n", 500)),
		Flags: []string{`\Deleted`}, Date: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	sinktest.Put(t, imapStore(t, srv, src), append(fx, big))
	dir := t.TempDir()
	dst, ckpt := filepath.Join(dir, "backup"), filepath.Join(dir, "ckpt")

	sum := copyJSON(t, "copy", imapURL(srv, src), "maildir:"+dst, "--checkpoint", ckpt, "--delete-after-copy", "--max-size", "2KB")
	if sum.Copied != 15 || sum.Deleted != 15 || sum.Filtered != 1 {
		t.Fatalf("copied %d, deleted %d, filtered %d; want 15, 15, 1", sum.Copied, sum.Deleted, sum.Filtered)
	}
	counts, deleted := imapCounts(t, srv, src, "INBOX", "Archive/2023")
	if counts["INBOX"] != 1 || counts["Archive/2023"] != 0 || deleted != 1 {
		t.Fatalf("source after the move: %v, %d flagged \\Deleted; want only the other client's message", counts, deleted)
	}
	if n := sourcetest.CountMaildir(dst); n != 15 {
		t.Fatalf("backup holds %d messages, want 15", n)
	}
	if sum := copyJSON(t, "copy", imapURL(srv, src), "maildir:"+dst, "--checkpoint", ckpt, "--delete-after-copy", "--max-size", "2KB"); sum.Copied != 0 || sum.Deleted != 0 {
		t.Fatalf("re-run: copied %d, deleted %d", sum.Copied, sum.Deleted)
	}
}

// Without UIDPLUS a move refuses to delete (exit 1, named), and leaves the
// source whole; the copies are made and recorded.
func TestMoveFromIMAPWithoutUIDPLUS(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{IMAPCapability: "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE SPECIAL-USE"})
	src := srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	sinktest.Put(t, imapStore(t, srv, src), fewFixtures("INBOX", 5))
	dir := t.TempDir()
	code, _, stderr := cli(t, "copy", imapURL(srv, src), "maildir:"+filepath.Join(dir, "d"), "--checkpoint", filepath.Join(dir, "c"), "--delete-after-copy")
	if code != exitFailed || !strings.Contains(stderr, "UIDPLUS") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if counts, deleted := imapCounts(t, srv, src, "INBOX"); counts["INBOX"] != 5 || deleted != 0 {
		t.Fatalf("source: %v, %d flagged \\Deleted", counts, deleted)
	}
}

// A move from Maildir removes the copied files.
func TestMoveFromMaildir(t *testing.T) {
	dir := t.TempDir()
	s, err := sinkmaildirNew(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	sinktest.Put(t, s, append(fewFixtures("INBOX", 4), fewFixtures("Sub", 3)...))
	sum := copyJSON(t, "copy", "maildir:"+filepath.Join(dir, "src"), "maildir:"+filepath.Join(dir, "dst"), "--checkpoint", filepath.Join(dir, "c"), "--delete-after-copy")
	if sum.Copied != 7 || sum.Deleted != 7 {
		t.Fatalf("copied %d, deleted %d", sum.Copied, sum.Deleted)
	}
	if n := sourcetest.CountMaildir(filepath.Join(dir, "src")); n != 0 {
		t.Fatalf("%d messages left at the source", n)
	}
}

// Folder rules and filters against Dovecot, IMAP to IMAP: plan shows the
// mapping, copy does what plan showed; localised names find the server's
// special-use folders.
func TestFolderRulesIMAP(t *testing.T) {
	srv, src, dst := migrationPair(t)
	var fx []sourcetest.Fixture
	for _, f := range []string{"INBOX", "Gesendete Elemente", "Projekte/Alt", "Projekte/Neu", "Spam"} {
		fx = append(fx, fewFixtures(f, 3)...)
	}
	fx[0].Date = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC) // before --since
	sinktest.Put(t, imapStore(t, srv, src), fx)
	c, err := imapclientDial(srv, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Sent", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ckpt := filepath.Join(t.TempDir(), "c")
	args := []string{imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt, "--exclude", "Spam", "--exclude", "Projekte/Alt", "--since", "2015-01-01"}
	code, planOut, stderr := cli(t, append([]string{"plan"}, args...)...)
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"Gesendete Elemente", "Sent", "Projekte/Neu"} {
		if !strings.Contains(planOut, want) {
			t.Fatalf("plan lacks %q:\n%s", want, planOut)
		}
	}
	if strings.Contains(planOut, "Spam") || strings.Contains(planOut, "Projekte/Alt") {
		t.Fatalf("plan shows excluded folders:\n%s", planOut)
	}
	sum := copyJSON(t, append([]string{"copy"}, args...)...)
	if sum.Copied != 8 || sum.Filtered != 1 {
		t.Fatalf("copied %d, filtered %d; want 8, 1", sum.Copied, sum.Filtered)
	}
	counts, _ := imapCounts(t, srv, dst, "INBOX", "Sent", "Projekte/Neu")
	if counts["INBOX"] != 2 || counts["Sent"] != 3 || counts["Projekte/Neu"] != 3 {
		t.Fatalf("destination: %v", counts)
	}
	for _, f := range sum.Folders {
		if !strings.Contains(planOut, f.Name) || !strings.Contains(planOut, f.Destination) {
			t.Errorf("copy sent %q to %q, which plan did not show", f.Name, f.Destination)
		}
	}
}

// expungeFirst deletes the first n messages of folder at user's server,
// as another client would.
func expungeFirst(t *testing.T, srv *dovecottest.Server, user, folder string, n int) {
	t.Helper()
	c, err := imapclientDial(srv, user)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var seq imap.SeqSet
	seq.AddRange(1, uint32(n))
	if err := c.Store(seq, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
}

// Mirror, IMAP to IMAP against Dovecot: what is gone from the source is
// deleted from the destination, within the guards: not on a first run,
// not more than 10 % of a folder unless forced, never when the folder's
// UIDVALIDITY changed.
func TestMirrorDeletes(t *testing.T) {
	srv, src, dst := migrationPair(t)
	fx := fewFixtures("Work", 20)
	sinktest.Put(t, imapStore(t, srv, src), fx)
	ckpt := filepath.Join(t.TempDir(), "c")
	mirror := func(extra ...string) (int, string, string) {
		return cli(t, append([]string{"copy", imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt, "--mirror-deletes", "--json"}, extra...)...)
	}
	dstCount := func() int {
		counts, _ := imapCounts(t, srv, dst, "Work")
		return counts["Work"]
	}
	// First run: copies; nothing is known to be gone.
	if code, out, stderr := mirror(); code != exitOK || !strings.Contains(out, `"copied": 20`) || !strings.Contains(stderr, "no earlier run") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, stderr)
	}
	expungeFirst(t, srv, src, "Work", 1)
	if code, out, _ := cli(t, "plan", imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt, "--mirror-deletes", "--json"); code != exitOK || !strings.Contains(out, `"mirror_deleted": 1`) || dstCount() != 20 {
		t.Fatalf("plan of one gone: exit %d, destination %d\n%s", code, dstCount(), out)
	}
	if code, out, _ := mirror(); code != exitOK || !strings.Contains(out, `"mirror_deleted": 1`) || dstCount() != 19 {
		t.Fatalf("one gone: exit %d, destination %d\n%s", code, dstCount(), out)
	}
	// Five of nineteen (26 %) is more than the 10 % a run may delete.
	expungeFirst(t, srv, src, "Work", 5)
	if code, out, stderr := mirror(); code != exitIncomplete || !strings.Contains(out, "max_delete_fraction") || dstCount() != 19 {
		t.Fatalf("five gone, not forced: exit %d, destination %d\n%s\n%s", code, dstCount(), out, stderr)
	}
	if code, out, _ := mirror("--force-deletes"); code != exitOK || !strings.Contains(out, `"mirror_deleted": 5`) || dstCount() != 14 {
		t.Fatalf("forced: exit %d, destination %d\n%s", code, dstCount(), out)
	}
	// The folder made again with the same mail: new UIDVALIDITY, every
	// recorded ID looks gone. Nothing may be deleted.
	c, err := imapclientDial(srv, src)
	if err != nil {
		t.Fatal(err)
	}
	c.Delete("Work").Wait()
	c.Close()
	sinktest.Put(t, imapStore(t, srv, src), fx[6:])
	if code, out, _ := mirror("--force-deletes"); code != exitIncomplete || !strings.Contains(out, "UIDVALIDITY") || !strings.Contains(out, `"copied": 0`) || dstCount() != 14 {
		t.Fatalf("UIDVALIDITY changed: exit %d, destination %d\n%s", code, dstCount(), out)
	}
	// The next run mirrors normally again: the old numbering's records
	// are gone, the new numbering's were made by the run before.
	if code, out, _ := mirror(); code != exitOK || !strings.Contains(out, `"already_present": 14`) || dstCount() != 14 {
		t.Fatalf("after the UIDVALIDITY change: exit %d, destination %d\n%s", code, dstCount(), out)
	}
	// Without --mirror-deletes nothing is ever deleted at the destination.
	sinktest.Put(t, imapStore(t, srv, src), fewFixtures("Work", 21)[20:])
	if sum := copyJSON(t, "copy", imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt); sum.Copied != 1 || dstCount() != 15 {
		t.Fatalf("new message: copied %d, destination %d", sum.Copied, dstCount())
	}
	expungeFirst(t, srv, src, "Work", 1)
	if sum := copyJSON(t, "copy", imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt); sum.MirrorDeleted != 0 || dstCount() != 15 {
		t.Fatalf("plain copy deleted: %d, destination %d", sum.MirrorDeleted, dstCount())
	}
	if code, out, _ := mirror(); code != exitOK || !strings.Contains(out, `"mirror_deleted": 1`) || dstCount() != 14 {
		t.Fatalf("mirror after the renumbering: exit %d, destination %d\n%s", code, dstCount(), out)
	}
}

// A re-run does not list a folder that has not changed since a run that
// completed it (STATUS with CONDSTORE's HIGHESTMODSEQ), and does list one
// whose flags or messages changed.
func TestUnchangedFoldersSkipped(t *testing.T) {
	srv, src, dst := migrationPair(t)
	sinktest.Put(t, imapStore(t, srv, src), append(fewFixtures("INBOX", 5), fewFixtures("Archive", 5)...))
	ckpt := filepath.Join(t.TempDir(), "c")
	args := []string{"copy", imapURL(srv, src), imapURL(srv, dst), "--checkpoint", ckpt, "--json", "--verbose"}
	rerun := func() (plan string, stderr string) {
		t.Helper()
		code, out, stderr := cli(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		return out, stderr
	}
	if out, _ := rerun(); !strings.Contains(out, `"copied": 10`) {
		t.Fatalf("first run:\n%s", out)
	}
	out, stderr := rerun()
	if strings.Count(stderr, "not listed") != 2 || !strings.Contains(out, `"already_present": 10`) {
		t.Fatalf("unchanged re-run listed folders:\n%s\n%s", out, stderr)
	}
	// A flag set by another client: INBOX is listed again and the flag
	// carried; Archive is still skipped.
	c, err := imapclientDial(srv, src)
	if err != nil {
		t.Fatal(err)
	}
	c.Select("INBOX", nil).Wait()
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	out, stderr = rerun()
	if strings.Count(stderr, "not listed") != 1 || !strings.Contains(out, `"flags_updated": 1`) || !strings.Contains(out, `"already_present": 10`) {
		t.Fatalf("after a flag change:\n%s\n%s", out, stderr)
	}
	sinktest.Put(t, imapStore(t, srv, src), fewFixtures("Archive", 6)[5:])
	if out, _ := rerun(); !strings.Contains(out, `"copied": 1`) {
		t.Fatalf("after a new message:\n%s", out)
	}
	// With other settings (a filter), the recorded state does not apply.
	if code, _, stderr := cli(t, append(args, "--max-size", "1MB")...); code != exitOK || strings.Contains(stderr, "not listed") {
		t.Fatalf("with a filter: exit %d\n%s", code, stderr)
	}
}

// The same for a Maildir source, by the directories' mtimes; a folder
// changed within the last second is listed, as its mtime could still
// change unseen within the same clock tick.
func TestUnchangedMaildirSkipped(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeMaildir(src, 30)
	args := []string{"copy", "maildir:" + src, "maildir:" + filepath.Join(dir, "d"), "--checkpoint", filepath.Join(dir, "c"), "--verbose"}
	if code, _, stderr := cli(t, args...); code != exitOK || strings.Contains(stderr, "not listed") {
		t.Fatalf("first run (folders just written): exit %d\n%s", code, stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	cli(t, args...) // lists again (states were too fresh to record) and records them
	_, _, stderr := cli(t, args...)
	if n := strings.Count(stderr, "not listed"); n != 3 {
		t.Fatalf("%d folders skipped, want 3:\n%s", n, stderr)
	}
	os.WriteFile(filepath.Join(src, "cur", "1999999999.new.host:2,S"), []byte("Message-ID: <late@x>\n\nlate\n"), 0o600)
	_, _, stderr = cli(t, args...)
	if n := strings.Count(stderr, "not listed"); n != 2 || !strings.Contains(stderr, "1 copied") {
		t.Fatalf("after a new message in INBOX: %d skipped\n%s", n, stderr)
	}
}

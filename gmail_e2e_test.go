package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/gmailtest"
	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/mbox"
)

// gmailAccount fills an emulated Gmail account: mail in the inbox, under
// labels (one message under two), sent, starred, marked important, in
// Spam, and archived with no label at all, which only All Mail lists.
func gmailAccount(t *testing.T) (src string) {
	src, _ = gmailServer(t)
	return src
}

// gmailServer is gmailAccount with its emulator.
func gmailServer(t *testing.T) (src string, g *gmailtest.Server) {
	g = gmailtest.New(t, "alice", "pw")
	date := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	for id, labels := range map[string][]string{
		"inbox":              {`\Inbox`, `\Important`},
		"work":               {"Work", `\Starred`},
		"two-labels":         {"Work", "Société/Reçus"},
		"sent":               {`\Sent`},
		"archived":           nil,
		"archived-important": {`\Important`},
		"archived-starred":   {`\Starred`},
		"spam":               {`\Spam`},
	} {
		g.Add(t, []byte("Message-ID: <"+id+"@example.com>\r\nSubject: "+id+"\r\n\r\nbody\r\n"), date, nil, labels...)
	}
	t.Setenv("MAILFERRY_SRC_PASSWORD", "pw")
	return "imap://alice@" + g.Addr + "?tls=none", g
}

// folderIDs lists a store: folder, then the message IDs it holds, sorted.
func folderIDs(t *testing.T, s source.Source) map[string][]string {
	t.Helper()
	ctx := context.Background()
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range folders {
		err := s.List(ctx, f.Name, func(m source.Message) error {
			if m.MessageIDKnown {
				out[f.Name] = append(out[f.Name], strings.Trim(m.MessageID, "<>"))
				return nil
			}
			r, err := s.Open(ctx, m)
			if err != nil {
				return err
			}
			defer r.Close()
			id, _, err := header.MessageID(r)
			out[f.Name] = append(out[f.Name], strings.Trim(id, "<>"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out[f.Name])
	}
	return out
}

// TestGmailSourceCopiesArchivedMail: from a Gmail account (recognised by
// X-GM-EXT-1, not by its host), every message of All Mail reaches the
// destination: each label's folder holds its messages, and the messages
// no label holds (archived, or only Important or Starred) are in Archive.
// Nothing is copied twice through All Mail, Important or Starred, verify
// agrees, and a re-run copies nothing. With --all-mail the account is
// copied as its server lists it.
func TestGmailSourceCopiesArchivedMail(t *testing.T) {
	src := gmailAccount(t)
	want := map[string][]string{
		"INBOX":         {"inbox@example.com"},
		"Work":          {"two-labels@example.com", "work@example.com"},
		"Société/Reçus": {"two-labels@example.com"},
		"Archive":       {"archived-important@example.com", "archived-starred@example.com", "archived@example.com"},
	}
	check := func(t *testing.T, got map[string][]string, sent, spam string) {
		t.Helper()
		w := maps.Clone(want)
		w[sent] = []string{"sent@example.com"}
		w[spam] = []string{"spam@example.com"}
		for f, ids := range got {
			if len(ids) == 0 {
				delete(got, f) // an empty Drafts or Trash
			}
		}
		if !maps.EqualFunc(got, w, slices.Equal) {
			t.Errorf("destination holds\n%v\nwant\n%v", got, w)
		}
	}

	t.Run("to Maildir", func(t *testing.T) {
		dir := t.TempDir() + "/backup"
		src, g := gmailServer(t) // a fresh account, to count its downloads
		sum := copyJSON(t, "copy", src, "maildir:"+dir)
		if sum.Copied != 9 {
			t.Errorf("copied %d, want 9 (8 messages, one with two labels)", sum.Copied)
		}
		g.Mu().Lock()
		bodies := g.BodiesFetched
		g.Mu().Unlock()
		if bodies != 8 {
			t.Errorf("%d bodies downloaded, want 8: one per message, however many labels it has", bodies)
		}
		s, err := srcmaildir.Open(dir, srcmaildir.LayoutMaildirPP)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, folderIDs(t, s), "[Gmail]/Sent Mail", "[Gmail]/Spam")
		if code, _, stderr := cli(t, "verify", src, "maildir:"+dir); code != exitOK {
			t.Errorf("verify: exit %d\n%s", code, stderr)
		}
		if again := copyJSON(t, "copy", src, "maildir:"+dir); again.Copied != 0 {
			t.Errorf("re-run copied %d", again.Copied)
		}
	})

	t.Run("to Dovecot", func(t *testing.T) {
		srv := dovecottest.Start(t, dovecottest.Options{})
		user := srv.NewUser(t)
		t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
		copyJSON(t, "copy", src, imapURL(srv, user))
		dst, err := srcimap.Open(context.Background(), srcimap.Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: srcimap.TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password})
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		check(t, folderIDs(t, dst), "[Gmail]/Sent Mail", "[Gmail]/Spam")
		if code, _, stderr := cli(t, "verify", src, imapURL(srv, user)); code != exitOK {
			t.Errorf("verify: exit %d\n%s", code, stderr)
		}
	})

	t.Run("--all-mail", func(t *testing.T) {
		dir := t.TempDir() + "/all"
		copyJSON(t, "copy", "--all-mail", src, "maildir:"+dir)
		s, err := srcmaildir.Open(dir, srcmaildir.LayoutMaildirPP)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := folderIDs(t, s)
		for f, n := range map[string]int{gmailtest.AllMail: 7, gmailtest.Important: 2, gmailtest.Starred: 2, "Archive": 0} {
			if len(got[f]) != n {
				t.Errorf("--all-mail: %s holds %d messages, want %d", f, len(got[f]), n)
			}
		}
	})
}

// TestGmailDownloadAllowanceStopsCleanly: once an account's daily IMAP
// download allowance is spent, Gmail refuses bodies with NO [OVERQUOTA].
// That is the source's budget, not a failure of each message: the run
// stops as at its own byte budget (exit 5, nothing named as failed,
// the reason on stderr), whether the refusal comes at the first body or
// midway, and the next run, the allowance back, copies everything, each
// message once.
func TestGmailDownloadAllowanceStopsCleanly(t *testing.T) {
	g := gmailtest.New(t, "alice", "pw")
	date := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	want := map[string][]string{}
	for i, labels := range [][]string{{`\Inbox`}, {`\Inbox`}, {"Work"}, {"Work", `\Inbox`}, nil, nil} {
		id := fmt.Sprintf("m%d@example.com", i)
		g.Add(t, []byte("Message-ID: <"+id+">\r\nSubject: "+id+"\r\n\r\nbody\r\n"), date, nil, labels...)
		folders := []string{"Archive"}
		if labels != nil {
			folders = nil
			for _, l := range labels {
				folders = append(folders, map[string]string{`\Inbox`: "INBOX", "Work": "Work"}[l])
			}
		}
		for _, f := range folders {
			want[f] = append(want[f], id)
		}
	}
	t.Setenv("MAILFERRY_SRC_PASSWORD", "pw")
	src := "imap://alice@" + g.Addr + "?tls=none"
	dir := t.TempDir() + "/backup"
	for _, allow := range []int{0, 2} {
		g.AllowDownloads(allow)
		code, out, stderr := cli(t, "copy", "--json", src, "maildir:"+dir)
		var sum plan.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("allowance %d: summary: %v\n%s", allow, err, out)
		}
		if code != exitBudget || sum.Failed != 0 || sum.FailedFolders != 0 || !sum.BudgetReached {
			t.Errorf("allowance %d: exit %d, %d failed, %d folders failed, budget_reached %v; want exit 5 and nothing failed\n%s",
				allow, code, sum.Failed, sum.FailedFolders, sum.BudgetReached, stderr)
		}
		if !strings.Contains(stderr, "allows no more downloads") || !strings.Contains(stderr, "OVERQUOTA") {
			t.Errorf("allowance %d: stderr does not say why the run stopped:\n%s", allow, stderr)
		}
	}
	g.AllowDownloads(-1)
	copyJSON(t, "copy", src, "maildir:"+dir)
	s, err := srcmaildir.Open(dir, srcmaildir.LayoutMaildirPP)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := folderIDs(t, s)
	for f, ids := range got {
		if len(ids) == 0 {
			delete(got, f)
		}
	}
	for _, ids := range want {
		slices.Sort(ids)
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("destination holds\n%v\nwant\n%v", got, want)
	}
	if code, _, stderr := cli(t, "verify", src, "maildir:"+dir); code != exitOK {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
}

// TestGmailRestoreOneMessageManyLabels: a backup of a Gmail account
// restored into another Gmail account gives one message per message,
// however many folders the backup holds it in, with a label for each
// folder (STORE +X-GM-LABELS, not a second APPEND); the backup's Archive
// goes back into All Mail without a label. A re-run adds nothing, and
// verify agrees.
func TestGmailRestoreOneMessageManyLabels(t *testing.T) {
	src := gmailAccount(t)
	dir := t.TempDir() + "/backup"
	copyJSON(t, "copy", src, "maildir:"+dir)

	b := gmailtest.New(t, "bob", "pw2")
	t.Setenv("MAILFERRY_DST_PASSWORD", "pw2")
	dst := "imap://bob@" + b.Addr + "?tls=none"
	sum := copyJSON(t, "copy", "maildir:"+dir, dst)
	if sum.Copied != 9 {
		t.Errorf("copied %d, want 9 (8 messages, one of them into two folders)", sum.Copied)
	}
	labelsOf := func() map[string][]string {
		out := map[string][]string{}
		for _, m := range b.Messages() {
			id, _, err := header.MessageID(strings.NewReader(string(m.Raw())))
			if err != nil {
				t.Fatal(err)
			}
			id = strings.Trim(id, "<>")
			if _, dup := out[id]; dup {
				t.Errorf("%s is in the account twice", id)
			}
			ls := slices.Clone(m.Labels)
			slices.Sort(ls)
			out[id] = append([]string{}, ls...)
		}
		return out
	}
	want := map[string][]string{
		"inbox@example.com":              {`\Inbox`},
		"work@example.com":               {"Work"},
		"two-labels@example.com":         {"Société/Reçus", "Work"},
		"sent@example.com":               {`\Sent`},
		"archived@example.com":           {},
		"archived-important@example.com": {},
		"archived-starred@example.com":   {},
		"spam@example.com":               {`\Spam`},
	}
	if got := labelsOf(); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("the account holds (Message-ID: labels)\n%v\nwant\n%v", got, want)
	}
	b.Mu().Lock()
	appends, stores := b.Appends, b.LabelStores
	b.Mu().Unlock()
	if appends != 8 || stores != 1 {
		t.Errorf("%d APPENDs and %d label STOREs, want 8 and 1", appends, stores)
	}
	if again := copyJSON(t, "copy", "maildir:"+dir, dst); again.Copied != 0 {
		t.Errorf("re-run copied %d", again.Copied)
	}
	if got := labelsOf(); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after a re-run the account holds\n%v", got)
	}
	if code, _, stderr := cli(t, "verify", "maildir:"+dir, dst); code != exitOK {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
}

// TestTakeoutIntoGmail: a Takeout export restored into Gmail gives each
// message once, its labels from X-Gmail-Labels; Archived mail (no
// folder label) goes to All Mail unlabelled.
func TestTakeoutIntoGmail(t *testing.T) {
	file := filepath.Join(t.TempDir(), "All mail Including Spam and Trash.mbox")
	labels := []string{"Inbox,Opened", "Sent,Opened", "Opened,Work,Inbox", "Archived,Opened", "Work,Projects/2024"}
	var buf bytes.Buffer
	for i := range 10 {
		mbox.Append(&buf, "1@xxx", time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Hour), takeoutMessage(i, labels[i%len(labels)]))
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gmailtest.New(t, "carol", "pw3")
	t.Setenv("MAILFERRY_DST_PASSWORD", "pw3")
	dst := "imap://carol@" + g.Addr + "?tls=none"
	copyJSON(t, "copy", "mbox:"+file, dst)
	want := [][]string{{`\Inbox`}, {`\Sent`}, {"Work", `\Inbox`}, {}, {"Projects/2024", "Work"}} // sorted
	msgs := g.Messages()
	if len(msgs) != 10 {
		t.Fatalf("%d messages in the account, want 10", len(msgs))
	}
	for _, m := range msgs {
		id, _, _ := header.MessageID(bytes.NewReader(m.Raw()))
		var i int
		fmt.Sscanf(id, "<takeout%d@", &i)
		got := slices.Sorted(slices.Values(m.Labels))
		if w := want[i%len(want)]; !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
			t.Errorf("%s: labels %q, want %q", id, got, w)
		}
	}
	if again := copyJSON(t, "copy", "mbox:"+file, dst); again.Copied != 0 {
		t.Errorf("re-run copied %d", again.Copied)
	}
}

// TestGmailLabelsAsKeywords: with --gmail-labels keywords, every message
// of a Gmail account is copied once, into INBOX, Sent, Spam or Archive by
// its system labels, its user labels (and Important) as keywords; a label
// that is not a valid keyword travels in modified UTF-7.
func TestGmailLabelsAsKeywords(t *testing.T) {
	src := gmailAccount(t)
	dir := t.TempDir() + "/backup"
	sum := copyJSON(t, "copy", "--gmail-labels", "keywords", src, "maildir:"+dir)
	if sum.Copied != 8 {
		t.Errorf("copied %d, want 8: each message once", sum.Copied)
	}
	s, err := srcmaildir.Open(dir, srcmaildir.LayoutMaildirPP)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := map[string]string{} // Message-ID: folder and flags
	folders, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		err := s.List(context.Background(), f.Name, func(m source.Message) error {
			r, err := s.Open(context.Background(), m)
			if err != nil {
				return err
			}
			defer r.Close()
			id, _, err := header.MessageID(r)
			got[strings.Trim(id, "<>")] = f.Name + " " + strings.Join(m.Flags, " ")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"inbox@example.com":              "INBOX $Important",
		"work@example.com":               `Archive Work \Flagged`,
		"two-labels@example.com":         "Archive Soci&AOk-t&AOk-/Re&AOc-us Work",
		"sent@example.com":               "[Gmail]/Sent Mail ",
		"archived@example.com":           "Archive ",
		"archived-important@example.com": "Archive $Important",
		"archived-starred@example.com":   `Archive \Flagged`,
		"spam@example.com":               "[Gmail]/Spam ",
	}
	if !maps.Equal(got, want) {
		t.Errorf("the backup holds (Message-ID: folder flags)\n%q\nwant\n%q", got, want)
	}
	if again := copyJSON(t, "copy", "--gmail-labels", "keywords", src, "maildir:"+dir); again.Copied != 0 {
		t.Errorf("re-run copied %d", again.Copied)
	}
	if code, _, stderr := cli(t, "verify", "--gmail-labels", "keywords", src, "maildir:"+dir); code != exitOK {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
}

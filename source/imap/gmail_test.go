package imap

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/gmailtest"
	"github.com/mailferry/mailferry/source"
)

func gmailMessage(id string) []byte {
	return []byte("Message-ID: <" + id + "@example.com>\r\nSubject: " + id + "\r\n\r\nbody of " + id + "\r\n")
}

// A Gmail account reads as its label folders plus Archive: the messages
// of All Mail no shown folder holds, each once. All Mail, Important and
// Starred are not shown; with KeepAllMail, the account is as listed.
func TestGmailView(t *testing.T) {
	g := gmailtest.New(t, "alice", "pw")
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []struct {
		id     string
		labels []string
	}{
		{"inbox", []string{`\Inbox`, `\Important`}},
		{"work", []string{"Work", `\Starred`}},
		{"two-labels", []string{"Work", "Société/Reçus"}},
		{"sent", []string{`\Sent`}},
		{"archived", nil},
		{"archived-important", []string{`\Important`}},
		{"archived-starred", []string{`\Starred`}},
		{"spam", []string{`\Spam`}},
		{"hidden-label", []string{"Hidden"}},
	} {
		g.Add(t, gmailMessage(m.id), date, nil, m.labels...)
	}
	g.Hide("Hidden")
	open := func(keep bool) *Store {
		s, err := Open(context.Background(), Config{Addr: g.Addr, TLS: TLSNone, User: "alice", Password: "pw", KeepAllMail: keep})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	ids := func(s *Store, folder string) []string {
		var out []string
		err := s.List(ctx, folder, func(m source.Message) error {
			out = append(out, strings.Trim(m.MessageID, "<>"))
			return nil
		})
		if err != nil {
			t.Fatalf("list %s: %v", folder, err)
		}
		slices.Sort(out)
		return out
	}

	s := open(false)
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range folders {
		names = append(names, f.Name+f.SpecialUse)
	}
	slices.Sort(names)
	want := []string{`Archive\Archive`, "INBOX", `Société/Reçus`, "Work", `[Gmail]/Drafts\Drafts`, `[Gmail]/Sent Mail\Sent`, `[Gmail]/Spam\Junk`, `[Gmail]/Trash\Trash`}
	if !slices.Equal(names, want) {
		t.Errorf("folders %q, want %q", names, want)
	}
	wantArchive := []string{"archived-important@example.com", "archived-starred@example.com", "archived@example.com", "hidden-label@example.com"}
	if got := ids(s, "Archive"); !slices.Equal(got, wantArchive) {
		t.Errorf("Archive lists %q, want %q", got, wantArchive)
	}
	if n, err := s.Count(ctx, "Archive"); err != nil || n != len(wantArchive) {
		t.Errorf("Count(Archive) = %d, %v; want %d", n, err, len(wantArchive))
	}
	if st, err := s.State(ctx, "Archive"); err != nil || st != "" {
		t.Errorf("State(Archive) = %q, %v; want \"\" (always listed)", st, err)
	}
	// Opened from Archive, a message is All Mail's, byte for byte.
	err = s.List(ctx, "Archive", func(m source.Message) error {
		if !m.MessageIDKnown || m.Folder != "Archive" {
			return fmt.Errorf("message %+v", m)
		}
		r, err := s.Open(ctx, m)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err == nil && !strings.Contains(string(b), "body of "+strings.Trim(strings.Split(m.MessageID, "@")[0], "<")) {
			err = fmt.Errorf("%s opened as %q", m.MessageID, b)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
	// A starred message keeps its star as \Flagged in its label folder.
	_ = s.List(ctx, "Work", func(m source.Message) error {
		if strings.Contains(m.MessageID, "<work@") && !slices.Contains(m.Flags, source.FlagFlagged) {
			t.Errorf("starred message without \\Flagged: %q", m.Flags)
		}
		return nil
	})

	all := open(true)
	folders, err = all.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, f := range folders {
		roles = append(roles, f.SpecialUse)
		if f.Name == "Archive" {
			t.Errorf("KeepAllMail: Archive shown")
		}
	}
	for _, r := range []string{string(imap.MailboxAttrAll), `\Important`, string(imap.MailboxAttrFlagged)} {
		if !slices.Contains(roles, r) {
			t.Errorf("KeepAllMail: no %s folder in %q", r, roles)
		}
	}
	if got := ids(all, gmailtest.AllMail); len(got) != 8 {
		t.Errorf("All Mail lists %d messages, want 8 (Spam is not in it)", len(got))
	}
}

// The labels a progress bar's count read are the listing's too: one
// FETCH of X-GM-LABELS per run, not two. A message that reached All Mail
// after the count is not left out for want of labels: they are read again.
func TestGmailLabelsReadOncePerRun(t *testing.T) {
	g := gmailtest.New(t, "alice", "pw")
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g.Add(t, gmailMessage("archived-1"), date, nil)
	g.Add(t, gmailMessage("inbox-1"), date, nil, `\Inbox`)
	ctx := context.Background()
	s, err := Open(ctx, Config{Addr: g.Addr, TLS: TLSNone, User: "alice", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fetches := func() int {
		g.Mu().Lock()
		defer g.Mu().Unlock()
		return g.LabelFetches
	}
	list := func() []string {
		var out []string
		if err := s.List(ctx, "Archive", func(m source.Message) error {
			out = append(out, m.MessageID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		add         string // archived before List, after Count
		wantFetches int
		want        []string
	}{
		{"", 1, []string{"<archived-1@example.com>"}},
		{"archived-2", 2, []string{"<archived-1@example.com>", "<archived-2@example.com>"}},
	} {
		if _, err := s.Folders(ctx); err != nil {
			t.Fatal(err)
		}
		before := fetches()
		if n, err := s.Count(ctx, "Archive"); err != nil || n != 1 {
			t.Fatalf("Count = %d, %v; want 1", n, err)
		}
		if tt.add != "" {
			g.Add(t, gmailMessage(tt.add), date, nil)
		}
		if got := list(); !slices.Equal(got, tt.want) {
			t.Errorf("Archive lists %q, want %q", got, tt.want)
		}
		if got := fetches() - before; got != tt.wantFetches {
			t.Errorf("%d label FETCHes for Count and List, want %d", got, tt.wantFetches)
		}
	}
}

// The labels answer is parsed whatever the order of its items, with
// quoted, literal and atom labels; anything else is refused, not guessed.
func TestParseLabelsFetch(t *testing.T) {
	tests := []struct {
		line   string
		uid    imap.UID
		labels []string
		ok     bool
		bad    bool
	}{
		{`* 1 FETCH (UID 5 X-GM-LABELS (\Inbox "a b" Work))`, 5, []string{`\Inbox`, "a b", "Work"}, true, false},
		{`* 2 FETCH (X-GM-LABELS () UID 7)`, 7, nil, true, false},
		{"* 3 FETCH (X-GM-LABELS (\x00{3}R&D) UID 9)", 9, []string{"R&D"}, true, false},
		{`* 4 EXISTS`, 0, nil, false, false},
		{`* 5 FETCH (UID 5)`, 0, nil, false, true},
		{`* 6 FETCH (UID 5 FLAGS (\Seen) X-GM-LABELS ())`, 0, nil, false, true},
		{`* 7 FETCH (UID 0 X-GM-LABELS ())`, 0, nil, false, true},
		{`* 8 FETCH (UID 5 X-GM-LABELS ("open)`, 0, nil, false, true},
	}
	for _, tt := range tests {
		uid, labels, ok, err := parseLabelsFetch(tt.line)
		if (err != nil) != tt.bad || ok != tt.ok || uid != tt.uid || !slices.Equal(labels, tt.labels) {
			t.Errorf("%q: %d %q %v %v", tt.line, uid, labels, ok, err)
		}
	}
}

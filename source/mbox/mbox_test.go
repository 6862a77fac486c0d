package mbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// writeTree writes fixtures as a Thunderbird-style tree of mboxrd files:
// folder "A/B" is the file "A.sbd/B".
func writeTree(t *testing.T, dir string, fx []sourcetest.Fixture) {
	t.Helper()
	files := map[string]*os.File{}
	for _, f := range fx {
		p := TreePath(dir, f.Folder)
		w := files[p]
		if w == nil {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			var err error
			if w, err = os.Create(p); err != nil {
				t.Fatal(err)
			}
			files[p] = w
		}
		if err := Append(w, "sender@example.com", f.Date, f.Content); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range files {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// withFinalNewline: mbox cannot keep a message without a final line end.
func withFinalNewline(fx []sourcetest.Fixture) []sourcetest.Fixture {
	for i, f := range fx {
		if len(f.Content) > 0 && f.Content[len(f.Content)-1] != '\n' {
			fx[i].Content = append(slices.Clip(f.Content), '\n')
		}
	}
	return fx
}

func TestConformance(t *testing.T) {
	var dir string
	sourcetest.Run(t, sourcetest.Opt{
		New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
			dir = t.TempDir()
			writeTree(t, dir, fx)
			s, err := Open(dir, Options{Format: FormatMboxrd})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Reopen: func(t *testing.T) source.Source {
			s, err := Open(dir, Options{Format: FormatMboxrd})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		NoFlags: true, // flags live in headers here; see TestThunderbird, TestTakeout
		Fixtures: func(t *testing.T) []sourcetest.Fixture {
			return withFinalNewline(sourcetest.DefaultFixtures(t))
		},
	})
}

// openFolders opens path and lists its folders; the store closes with t.
func openFolders(t *testing.T, path string, opt Options) (*Store, []source.Folder) {
	t.Helper()
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	folders, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, folders
}

// listAll returns every message of s by folder, with its content.
func listAll(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	ctx := context.Background()
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range folders {
		err := s.List(ctx, f.Name, func(m source.Message) error {
			r, err := s.Open(ctx, m)
			if err != nil {
				return err
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if int64(len(b)) != m.Size {
				t.Errorf("%s/%s: Size %d, read %d", m.Folder, m.ID, m.Size, len(b))
			}
			out[f.Name] = append(out[f.Name], string(b))
			return nil
		})
		if err != nil {
			t.Fatalf("list %q: %v", f.Name, err)
		}
	}
	return out
}

// refSplit is an independent splitter, stats.py's rule: a message is what
// follows a From_ line up to the next; here less one blank separator line.
var refFrom = regexp.MustCompile(`^From \S+\s+(Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{1,2}:\d\d`)

func refSplit(data []byte) []string {
	var out []string
	var cur []byte
	started := false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if refFrom.Match(line) {
			if started {
				out = append(out, string(stripSeparator(cur)))
			}
			started, cur = true, nil
			continue
		}
		cur = append(cur, line...)
	}
	if started {
		out = append(out, string(stripSeparator(cur)))
	}
	return out
}

func stripSeparator(b []byte) []byte {
	switch {
	case bytes.HasSuffix(b, []byte("\n\r\n")):
		return b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n\n")), string(b) == "\n":
		return b[:len(b)-1]
	case string(b) == "\r\n":
		return nil
	}
	return b
}

// TestCorpusMboxFiles: the corpus's five mbox files split as its README
// says (mailbox_01's "From time to time" body line does not split), and
// rlug as mime4j's own expected split, byte for byte but for the blank
// separator line mime4j keeps.
func TestCorpusMboxFiles(t *testing.T) {
	corpus := sourcetest.RequireCorpus(t)
	tests := []struct {
		path string
		n    int
	}{
		{"cpython-test_email/mailbox_01.mbox", 1},
		{"james-mime4j/mbox-rlug/mbox.rlug", 5},
		{"spamassassin/nice.mbox", 3},
		{"perl-mail-box/mbox.src", 45},
		{"perl-mail-box/mbox.win", 45},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := filepath.Join(corpus, tt.path)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(p, Options{Folder: "INBOX"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := listAll(t, s)["INBOX"]
			want := refSplit(data)
			if len(got) != tt.n || len(want) != tt.n {
				t.Fatalf("%d messages, reference split %d, want %d", len(got), len(want), tt.n)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("message %d differs: got %d bytes %q..., want %d bytes %q...", i, len(got[i]), clip(got[i]), len(want[i]), clip(want[i]))
				}
			}
			if strings.HasSuffix(tt.path, "mbox.rlug") {
				for i := range got {
					exp, err := os.ReadFile(fmt.Sprintf("%s-%d", p, i))
					if err != nil {
						t.Fatal(err)
					}
					if got[i] != string(stripSeparator(exp)) {
						t.Errorf("message %d differs from mime4j's mbox.rlug-%d", i, i)
					}
				}
			}
			if strings.HasSuffix(tt.path, "mailbox_01.mbox") && !strings.Contains(got[0], "\nFrom time to time") {
				t.Errorf("the unescaped From line was lost: %q", got[0])
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

// TestSplitting pins the edge cases of the format, each alone.
func TestSplitting(t *testing.T) {
	const from = "From a@b Sat Jan  3 01:05:34 1996\n"
	tests := []struct {
		name, file, format string
		want               []string
	}{
		{"two messages", from + "A: 1\n\nx\n\n" + from + "A: 2\n\ny\n", "", []string{"A: 1\n\nx\n", "A: 2\n\ny\n"}},
		{"no blank separator", from + "A: 1\n\nx\n" + from + "A: 2\n", "", []string{"A: 1\n\nx\n", "A: 2\n"}},
		{"several blank lines keep all but one", from + "A: 1\n\nx\n\n\n\n" + from + "A: 2\n", "", []string{"A: 1\n\nx\n\n\n", "A: 2\n"}},
		{"CRLF", strings.ReplaceAll(from, "\n", "\r\n") + "A: 1\r\n\r\nx\r\n\r\n" + from + "A: 2\r\n", "", []string{"A: 1\r\n\r\nx\r\n", "A: 2\r\n"}},
		{"unescaped From in body", from + "A: 1\n\nFrom here on\nFrom me, with love\n\n" + from + "A: 2\n", "", []string{"A: 1\n\nFrom here on\nFrom me, with love\n", "A: 2\n"}},
		{"mboxo quoting stays", from + "A: 1\n\n>From x\n", "", []string{"A: 1\n\n>From x\n"}},
		{"mboxrd detected", from + "A: 1\n\n>From x\n>>From y\n", "", []string{"A: 1\n\nFrom x\n>From y\n"}},
		{"mboxrd asked for", from + "A: 1\n\n>From x\nFrom, not quoted\n", FormatMboxrd, []string{"A: 1\n\nFrom x\nFrom, not quoted\n"}},
		{"mboxo asked for", from + "A: 1\n\n>From x\n>>From y\n", FormatMboxo, []string{"A: 1\n\n>From x\n>>From y\n"}},
		{"Content-Length spans a From_ line", from + "Content-Length: 40\n\n" + from + "body\n\n" + from + "A: 2\n", "", []string{"Content-Length: 40\n\n" + from + "body\n", "A: 2\n"}},
		{"wrong Content-Length ignored", from + "Content-Length: 3\n\nbody\n\n" + from + "A: 2\n", "", []string{"Content-Length: 3\n\nbody\n", "A: 2\n"}},
		{"empty message", from + "\n" + from + "A: 2\n", "", []string{"", "A: 2\n"}},
		{"no final newline", from + "A: 1\n\nend", "", []string{"A: 1\n\nend"}},
		{"header only", from + "A: 1\n", "", []string{"A: 1\n"}},
		{"empty file", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f.mbox")
			os.WriteFile(p, []byte(tt.file), 0o600)
			s, err := Open(p, Options{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := listAll(t, s)["f"]; !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNotAnMbox(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(p, []byte("Subject: hello\n\nnot an mbox\n"), 0o600)
	s, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Folders(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not an mbox file") || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("got %v, want an error naming the file as not an mbox", err)
	}
}

func TestFromLineDate(t *testing.T) {
	tests := []struct {
		line string
		want time.Time
	}{
		{"From news@gmane.org Tue Mar 04 03:33:20 2003\n", time.Date(2003, 3, 4, 3, 33, 20, 0, time.UTC)},
		{"From cristy@x Wed Jun 14 18:05 MET 2000\n", time.Date(2000, 6, 14, 18, 5, 0, 0, time.UTC)},
		{"From 1781@xxx Wed Nov 16 19:39:23 +0100 2022\n", time.Date(2022, 11, 16, 18, 39, 23, 0, time.UTC)},
		{"From MAILER-DAEMON Sun Aug  7 11:40:37 2022 extra info\n", time.Date(2022, 8, 7, 11, 40, 37, 0, time.UTC)},
		{"From - Mon Jan  2 15:04:05 2006\r\n", time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, ok := fromLineDate([]byte(tt.line))
		if !ok || !got.Equal(tt.want) {
			t.Errorf("%q: %v %v, want %v", tt.line, got, ok, tt.want)
		}
	}
	if _, ok := fromLineDate([]byte("From a@b Mon Foo 1 10:00 2000\n")); ok {
		t.Error("a bad month was accepted")
	}
}

type memCache map[string][]byte

func (m memCache) Cached(k string) ([]byte, error)    { return m[k], nil }
func (m memCache) SetCached(k string, v []byte) error { m[k] = bytes.Clone(v); return nil }

func takeoutMsg(i int, labels string) []byte {
	return []byte(fmt.Sprintf("X-GM-THRID: %d\r\nX-Gmail-Labels: %s\r\nMessage-ID: <m%d@example.com>\r\nSubject: message %d\r\n\r\nbody %d\r\n%s\r\n", 1000+i, labels, i, i, i, strings.Repeat("filler line to give the message some size\r\n", 40)))
}

// TestTakeout: labels become folders (a message in each of its labels'
// folders once), states become flags, and categories are no folders.
func TestTakeout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "All mail Including Spam and Trash.mbox")
	var buf bytes.Buffer
	labels := []string{
		"Inbox,Opened",
		"Sent,Opened,Important",
		"Unread,Category Social,Inbox",
		`Opened,"Clients, old",Work/Projects,Starred`,
		"Archived,Opened",
		"=?UTF-8?Q?Entw=C3=BCrfe?=,Drafts",
		"Spam,Unread",
		"Trash,Opened,Inbox,Inbox",
	}
	for i, l := range labels {
		Append(&buf, fmt.Sprintf("%d@xxx", i), time.Date(2022, 11, 16, 19, 39, i, 0, time.UTC), takeoutMsg(i, l))
	}
	os.WriteFile(p, buf.Bytes(), 0o600)
	s, folders := openFolders(t, p, Options{})
	ctx := context.Background()
	got := map[string]string{}
	for _, f := range folders {
		var ids []string
		s.List(ctx, f.Name, func(m source.Message) error {
			ids = append(ids, fmt.Sprintf("%s%q", m.MessageID, m.Flags))
			if m.Date.Second() == 0 && m.MessageID != "<m0@example.com>" {
				t.Errorf("%s: date %v is not the From_ line's", m.MessageID, m.Date)
			}
			return nil
		})
		got[f.Name+" "+f.SpecialUse] = strings.Join(ids, " ")
	}
	want := map[string]string{
		"INBOX ":               `<m0@example.com>["\\Seen"] <m2@example.com>[] <m7@example.com>["\\Seen"]`,
		`Sent \Sent`:           `<m1@example.com>["\\Seen"]`,
		`Important \Important`: `<m1@example.com>["\\Seen"]`,
		"Clients, old ":        `<m3@example.com>["\\Flagged" "\\Seen"]`,
		"Work/Projects ":       `<m3@example.com>["\\Flagged" "\\Seen"]`,
		`Archive \Archive`:     `<m4@example.com>["\\Seen"]`,
		"Entwürfe ":            `<m5@example.com>["\\Draft"]`,
		`Drafts \Drafts`:       `<m5@example.com>["\\Draft"]`,
		`Spam \Junk`:           `<m6@example.com>[]`,
		`Trash \Trash`:         `<m7@example.com>["\\Seen"]`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("folders:\n got %q\nwant %q", got, want)
	}
	// NoLabels: the file is one folder.
	s2, _ := Open(p, Options{NoLabels: true})
	defer s2.Close()
	if all := listAll(t, s2); len(all) != 1 || len(all["All mail Including Spam and Trash"]) != len(labels) {
		t.Errorf("without labels: %d folders %q", len(all), slices.Collect(maps.Keys(all)))
	}
}

// TestThunderbird: a profile's Local Folders: .sbd nesting, .msf and other
// files ignored, empty folders kept, X-Mozilla-Status flags, expunged
// messages skipped unless asked for.
func TestThunderbird(t *testing.T) {
	dir := t.TempDir()
	msg := func(status, status2, keys, subject string) []byte {
		return []byte("X-Mozilla-Status: " + status + "\nX-Mozilla-Status2: " + status2 + "\nX-Mozilla-Keys: " + keys + "\nSubject: " + subject + "\n\nbody\n")
	}
	write := func(rel string, msgs ...[]byte) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		var buf bytes.Buffer
		for _, m := range msgs {
			Append(&buf, "-", time.Date(2023, 5, 1, 10, 0, 0, 0, time.UTC), m)
		}
		os.WriteFile(p, buf.Bytes(), 0o600)
		os.WriteFile(p+".msf", []byte("// <!-- <mdb:mork:z v=\"1.4\"/> -->"), 0o600)
	}
	write("Inbox", msg("0001", "00000000", "", "read"), msg("0003", "00000000", "$label1 todo", "replied"), msg("0009", "00000000", "", "expunged"))
	write("Archives.sbd/2023", msg("1004", "00200000", "", "flagged forwarded imapdeleted"))
	write("Trash")
	os.WriteFile(filepath.Join(dir, "filterlog.html"), []byte("<html></html>"), 0o600)
	os.WriteFile(filepath.Join(dir, "folderTree.json"), []byte("{}"), 0o600)

	flagsBySubject := func(opt Options) map[string]string {
		s, folders := openFolders(t, dir, opt)
		ctx := context.Background()
		out := map[string]string{}
		for _, f := range folders {
			out["folder "+f.Name] = ""
			s.List(ctx, f.Name, func(m source.Message) error {
				r, _ := s.Open(ctx, m)
				b, _ := io.ReadAll(r)
				subj := regexp.MustCompile(`Subject: (.*)\n`).FindSubmatch(b)
				out[f.Name+": "+string(subj[1])] = fmt.Sprintf("%q", m.Flags)
				return nil
			})
		}
		return out
	}
	got := flagsBySubject(Options{})
	want := map[string]string{
		"folder INBOX": "", "folder Archives/2023": "", "folder Trash": "",
		"INBOX: read":    `["\\Seen"]`,
		"INBOX: replied": `["$label1" "\\Answered" "\\Seen" "todo"]`,
		"Archives/2023: flagged forwarded imapdeleted": `["$Forwarded" "\\Deleted" "\\Flagged"]`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := flagsBySubject(Options{KeepExpunged: true}); got["INBOX: expunged"] != `["\\Seen"]` {
		t.Errorf("KeepExpunged: %q", got)
	}
}

// TestIncrementalIndex: with the index cached, a re-run reads only the
// fingerprint and what follows the last indexed message; a rewritten file
// is indexed again and keeps its IDs.
func TestIncrementalIndex(t *testing.T) {
	p := filepath.Join(t.TempDir(), "takeout.mbox")
	var buf bytes.Buffer
	for i := range 2000 {
		Append(&buf, "x@xxx", time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute), takeoutMsg(i, "Inbox,Opened"))
	}
	os.WriteFile(p, buf.Bytes(), 0o600)
	size := int64(buf.Len())
	cache := memCache{}
	ids := func(want int) ([]string, int64) {
		t.Helper()
		s, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.UseCache(cache)
		var out []string
		if err := s.List(context.Background(), "INBOX", func(m source.Message) error { out = append(out, m.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(out) != want {
			t.Fatalf("%d messages, want %d", len(out), want)
		}
		return out, s.BytesRead()
	}
	first, read := ids(2000)
	if read < size {
		t.Fatalf("first run read %d of %d bytes", read, size)
	}
	again, read := ids(2000)
	if !slices.Equal(first, again) || read > 2*fingerprintSize {
		t.Fatalf("unchanged file: read %d bytes (IDs equal: %v)", read, slices.Equal(first, again))
	}

	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0o600)
	var tail bytes.Buffer
	for i := 2000; i < 2010; i++ {
		Append(&tail, "x@xxx", time.Now(), takeoutMsg(i, "Inbox"))
	}
	f.Write(tail.Bytes())
	f.Close()
	grown, read := ids(2010)
	if !slices.Equal(first, grown[:2000]) {
		t.Fatal("IDs changed when messages were appended")
	}
	lastMsg := size - int64(bytes.LastIndex(buf.Bytes(), []byte("\nFrom x@xxx")))
	if limit := 2*fingerprintSize + lastMsg + int64(tail.Len()) + 1024; read > limit {
		t.Fatalf("appending %d bytes made a re-run read %d bytes (limit %d, file %d)", tail.Len(), read, limit, size)
	}

	// A compaction drops the first message: the file is read again, and
	// the rest keep their IDs.
	data, _ := os.ReadFile(p)
	second := bytes.Index(data[1:], []byte("From x@xxx")) + 1
	os.WriteFile(p, data[second:], 0o600)
	compacted, read := ids(2009)
	if !slices.Equal(compacted, grown[1:]) || read < int64(len(data)-second) {
		t.Fatalf("after compaction: IDs equal %v, read %d", slices.Equal(compacted, grown[1:]), read)
	}
}

// TestChangedUnderfoot: a file rewritten between List and Open is never
// copied as other bytes.
func TestChangedUnderfoot(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.mbox")
	var buf bytes.Buffer
	Append(&buf, "a@b", time.Now(), []byte("Subject: one\n\nbody one\n"))
	os.WriteFile(p, buf.Bytes(), 0o600)
	s, _ := Open(p, Options{})
	defer s.Close()
	var msgs []source.Message
	s.List(context.Background(), "f", func(m source.Message) error { msgs = append(msgs, m); return nil })
	os.WriteFile(p, bytes.Replace(buf.Bytes(), []byte("one"), []byte("two"), -1), 0o600)
	r, err := s.Open(context.Background(), msgs[0])
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if !errors.Is(err, source.ErrMessageNotFound) {
		t.Fatalf("got %v, want ErrMessageNotFound", err)
	}
}

// Package sourcetest is the conformance suite every source.Source runs (in
// the spirit of rclone's fstest/fstests): an adapter's test seeds a store
// with the fixtures and calls Run.
package sourcetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Fixture is one message to seed.
type Fixture struct {
	Name    string // where it came from, for failure messages
	Folder  string
	Content []byte
	Flags   []string
	Date    time.Time
}

// HasNUL reports whether the content has a NUL byte, which IMAP cannot
// carry without the BINARY extension.
func (f Fixture) HasNUL() bool { return bytes.IndexByte(f.Content, 0) >= 0 }

// flagSets cycles over the fixtures: system flags, keywords of both cases,
// and none.
var flagSets = [][]string{
	nil,
	{`\Seen`},
	{`\Answered`, `\Seen`},
	{"$Label1", `\Flagged`},
	{"$Forwarded", `\Seen`, "project-x"},
	{`\Draft`},
	{`\Deleted`, `\Seen`},
}

// base is the date of the first fixture; each next one is an hour and a
// second later, with several time zones, so a date handled as local time or
// truncated to minutes shows.
var base = time.Date(2019, 3, 10, 1, 59, 58, 0, time.FixedZone("", -7*3600))

func dateFor(i int) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -3*3600)}
	return base.Add(time.Duration(i) * (time.Hour + time.Second)).In(zones[i%len(zones)])
}

// Generated returns the awkward messages the corpus lacks (its README,
// "Gaps"), in folder.
func Generated(folder string) []Fixture {
	long := "X-Long: " + strings.Repeat("abcdefghij", 2000) + "\r\n" // a 20,000-byte line
	var big bytes.Buffer
	big.WriteString("From: big@example.com\r\nSubject: ten megabytes\r\nMessage-ID: <big@example.com>\r\n\r\n")
	for big.Len() < 10<<20 {
		fmt.Fprintf(&big, "line %08d of a large message, to check it is streamed and kept whole\r\n", big.Len())
	}
	cases := []struct{ name, content string }{
		{"empty-body", "From: a@example.com\r\nSubject: empty body\r\nMessage-ID: <empty-body@example.com>\r\n\r\n"},
		{"no-final-newline", "From: a@example.com\r\nSubject: no final newline\r\n\r\nlast line without end"},
		{"long-line", "From: a@example.com\r\nSubject: long line\r\n" + long + "\r\nbody\r\n"},
		{"dot-lines", "From: a@example.com\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n. \r\nend\r\n.\r\n"},
		{"from-lines", "From: a@example.com\r\nSubject: From lines\r\n\r\nFrom here on\r\n>From quoted\r\nFrom \r\n"},
		{"8bit-header", "From: J\xc3\xbcrgen <j@example.com>\r\nSubject: Gr\xfc\xdfe \xe6\x97\xa5\xe6\x9c\xac\r\n\r\nbody \xff\xfe\r\n"},
		{"nul-bytes", "From: a@example.com\r\nSubject: NUL\r\n\r\nbefore\x00after\r\n\x00\r\n"},
		{"bare-lf", "From: a@example.com\nSubject: bare LF\n\nline\nline\n"},
		{"lone-cr", "From: a@example.com\r\nSubject: lone CR\r\n\r\nx\ry\r\n"},
		{"header-only", "From: a@example.com\r\nSubject: no body, no blank line\r\n"},
		{"zero-bytes", ""},
		{"ten-megabytes", big.String()},
	}
	out := make([]Fixture, len(cases))
	for i, c := range cases {
		out[i] = Fixture{Name: "generated/" + c.name, Folder: folder, Content: []byte(c.content), Flags: flagSets[i%len(flagSets)], Date: dateFor(i)}
	}
	return out
}

// CorpusDir finds ../shared/corpus beside the module root, or
// $MAILFERRY_CORPUS. It returns "" when there is none.
func CorpusDir() string {
	if d := os.Getenv("MAILFERRY_CORPUS"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "corpus")
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				return c
			}
			return ""
		}
	}
	return ""
}

// RequireCorpus returns the corpus directory, skipping the test when there
// is none, unless CI=true, where a missing corpus fails it.
func RequireCorpus(t testing.TB) string {
	t.Helper()
	d := CorpusDir()
	if d == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("the message corpus (../shared/corpus or $MAILFERRY_CORPUS) is missing, and CI=true forbids skipping")
		}
		t.Skip("no message corpus: ../shared/corpus beside the repository, or $MAILFERRY_CORPUS")
	}
	return d
}

// corpusFolders files the corpus into folders that exercise nesting and
// non-ASCII names; the rest go to "Corpus/<source>".
var corpusFolders = map[string]string{
	"cpython-test_email":    "INBOX",
	"enmime":                "Entwürfe/enmime",
	"flufl-bounce":          "Sent",
	"stalwart-mail-parser":  "日本語",
	"nodemailer-mailparser": "Archive/2024/Big",
}

// Corpus returns every message file of the corpus (mbox files whole, as one
// message each), filed into folders, with flags and dates cycling.
func Corpus(t testing.TB) []Fixture {
	t.Helper()
	dir := RequireCorpus(t)
	var out []Fixture
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch d.Name() {
		case "README.md", "SOURCE.md", "SHA256SUMS", "stats.py":
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := strings.Split(filepath.ToSlash(rel), "/")[0]
		folder := corpusFolders[src]
		if folder == "" {
			folder = "Corpus/" + src
		}
		i := len(out)
		out = append(out, Fixture{Name: "corpus/" + filepath.ToSlash(rel), Folder: folder, Content: data, Flags: flagSets[i%len(flagSets)], Date: dateFor(i)})
		return nil
	})
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	if len(out) < 700 {
		t.Fatalf("corpus at %s has %d message files; expected 754", dir, len(out))
	}
	return out
}

// Folders returns the distinct folders of fixtures, sorted.
func Folders(fx []Fixture) []string {
	var out []string
	for _, f := range fx {
		if !slices.Contains(out, f.Folder) {
			out = append(out, f.Folder)
		}
	}
	slices.Sort(out)
	return out
}

// CountMaildir counts the messages (files in cur/ and new/) of a Maildir
// tree: how tests check that a destination holds each message once.
func CountMaildir(root string) int {
	n := 0
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if d := filepath.Base(filepath.Dir(p)); d == "cur" || d == "new" {
				n++
			}
		}
		return nil
	})
	return n
}

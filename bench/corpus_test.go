package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type corpus struct {
	n     int
	bytes int64
	msgs  []benchMsg
}

type benchMsg struct {
	folder  string // Maildir++ directory: "" for INBOX, ".Lists", ...
	name    string
	content []byte
	date    time.Time
}

// folders: the corpus's Maildir++ directories, their IMAP names and their
// share of the messages (percent).
var folders = []struct {
	dir, mailbox string
	weight       int
}{{"", "INBOX", 40}, {".Lists", "Lists", 30}, {".Work.2024", "Work/2024", 15}, {".Sent", "Sent", 10}, {".Archive", "Archive", 5}}

// byMailbox groups the corpus by IMAP mailbox, each message's content in
// CRLF as APPEND sends it.
func (c *corpus) byMailbox() map[string][]benchMsg {
	name := map[string]string{}
	for _, f := range folders {
		name[f.dir] = f.mailbox
	}
	out := map[string][]benchMsg{}
	for _, m := range c.msgs {
		m.content = bytes.ReplaceAll(m.content, []byte("\n"), []byte("\r\n"))
		out[name[m.folder]] = append(out[name[m.folder]], m)
	}
	return out
}

// generate makes n messages, seeded: sizes from 2 KB to 1 MB (most small,
// a few large, about 45 KB on average), or about 1 KB each with
// MAILFERRY_BENCH_SMALL=1; five folders, flags and a keyword.
func generate(n int) *corpus { return gen(n, false) }

// generateText is generate with the bodies written in words, as mail is
// (the WAN row's corpus: what compression meets in practice), rather than
// in random letters, which no compressor shrinks much.
func generateText(n int) *corpus { return gen(n, true) }

// vocabulary: common English words, drawn with a skew toward the first.
var vocabulary = strings.Fields(`the of and to a in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we their has would when if so no
will more about can said what up out them into some could other time these two may then do first any my
now such like our over man me even most made after also did many before must through back years where
much your way well down should because each just those people how too little state good very make world
still own see men work long get here between both life being under never day same another know while last
might us great old year off come since against go came right used take three meeting invoice report
project attached please thanks regards team schedule update review budget quarter customer order delivery
account payment question answer week monday friday office call today tomorrow`)

func gen(n int, text bool) *corpus {
	rng := rand.New(rand.NewPCG(42, 42))
	// MAILFERRY_BENCH_SMALL=1: messages of about 1 KB, for the scale row.
	small := os.Getenv("MAILFERRY_BENCH_SMALL") == "1"
	c := &corpus{n: n}
	letters := []byte("abcdefghijklmnopqrstuvwxyz      ")
	for i := range n {
		var size int
		switch p := rng.IntN(100); {
		case small:
			size = 700 + rng.IntN(600)
		case p < 75:
			size = 2<<10 + rng.IntN(18<<10)
		case p < 97:
			size = 20<<10 + rng.IntN(130<<10)
		default:
			size = 150<<10 + rng.IntN(874<<10)
		}
		date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute)
		var b strings.Builder
		fmt.Fprintf(&b, "From: Sender %d <s%d@example.org>\nTo: bench@example.net\nSubject: benchmark message %d\nDate: %s\nMessage-ID: <%d.bench@example.org>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n",
			i, i%97, i, date.Format(time.RFC1123Z), i)
		line := make([]byte, 0, 80)
		for b.Len() < size {
			line = line[:0]
			if text {
				for len(line) < 66 {
					// Skewed: the square of a uniform picks early words more.
					k := rng.Float64()
					line = append(append(line, vocabulary[int(k*k*float64(len(vocabulary)))]...), ' ')
				}
			} else {
				for range 72 {
					line = append(line, letters[rng.IntN(len(letters))])
				}
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		w := rng.IntN(100)
		f := ""
		for _, x := range folders {
			if w < x.weight {
				f = x.dir
				break
			}
			w -= x.weight
		}
		flags := "S"
		switch p := rng.IntN(100); {
		case p < 10:
			flags = "FS"
		case p < 15:
			flags = "RS"
		case p < 20:
			flags = "Sa" // keyword $Label1
		case p < 25:
			flags = ""
		}
		content := []byte(b.String())
		c.bytes += int64(len(content))
		c.msgs = append(c.msgs, benchMsg{folder: f, name: fmt.Sprintf("%d.M%dP1.bench:2,%s", date.Unix(), i, flags), content: content, date: date})
	}
	return c
}

// writeMaildir lays the corpus out as a Maildir++ tree; flat puts every
// message in INBOX (for POP3).
func (c *corpus) writeMaildir(t testing.TB, root string, flat bool) {
	for _, m := range c.msgs {
		dir := filepath.Join(root, m.folder)
		sub := "cur"
		if flat {
			dir, sub = root, "new"
		}
		for _, s := range []string{"cur", "new", "tmp"} {
			os.MkdirAll(filepath.Join(dir, s), 0o700)
		}
		name := m.name
		if flat {
			name, _, _ = strings.Cut(name, ":")
		} else {
			os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 $Label1\n"), 0o600)
		}
		p := filepath.Join(dir, sub, name)
		if err := os.WriteFile(p, m.content, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, m.date, m.date)
	}
}

// addOneEach delivers one new message, named by tag, into each of the
// corpus's folders of the Maildir++ tree at root.
func addOneEach(t testing.TB, root, tag string) {
	t.Helper()
	for _, f := range folders {
		body := fmt.Sprintf("From: new@example.org\nSubject: new %s\nMessage-ID: <new-%s-%s@example.org>\n\nnew\n", tag, tag, strings.TrimPrefix(f.dir, "."))
		p := filepath.Join(root, f.dir, "new", fmt.Sprintf("%d.new-%s.bench", time.Now().UnixNano(), tag))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

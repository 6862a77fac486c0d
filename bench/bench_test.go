// Package bench times mailferry beside the tools people use today, on one
// generated corpus in one throwaway Dovecot, and checks after every run
// that the destination holds every message (a fast wrong run cannot win).
//
// Run it with bench/run.sh (which installs Dovecot and the peers on
// Debian). Settings: MAILFERRY_BENCH_N messages (default 5000),
// MAILFERRY_BENCH_RUNS timed runs per cell (default 3, median reported),
// MAILFERRY_BENCH_PEERS=0 to time mailferry alone, MAILFERRY_BENCH_PATHS
// to time only some paths (comma-separated, matched against the path with
// "→" written "-": "imap-maildir,limit"), MAILFERRY_BENCH_LATENCY_N
// messages for the 20 ms latency run (default 500, 0 to leave it out).
// Without MAILFERRY_BENCH_N the test is skipped: it is a benchmark, run on
// purpose.
package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sys/unix"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
	"github.com/mailferry/mailferry/source/sourcetest"
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
// a few large, about 45 KB on average), five folders, flags and a keyword.
func generate(n int) *corpus {
	rng := rand.New(rand.NewPCG(42, 42))
	c := &corpus{n: n}
	letters := []byte("abcdefghijklmnopqrstuvwxyz      ")
	for i := range n {
		var size int
		switch p := rng.IntN(100); {
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
			for range 72 {
				line = append(line, letters[rng.IntN(len(letters))])
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

// result is one cell of the table.
type result struct {
	tool, path string
	msgs       int
	mb         float64
	walls      []time.Duration
	rssKB      int64
	note       string
}

func (r *result) median() time.Duration {
	w := slices.Clone(r.walls)
	slices.Sort(w)
	return w[len(w)/2]
}

// wantPath reports whether MAILFERRY_BENCH_PATHS asks for path.
func wantPath(path string) bool {
	sel := os.Getenv("MAILFERRY_BENCH_PATHS")
	if sel == "" {
		return true
	}
	p := strings.ToLower(strings.ReplaceAll(path, "→", "-"))
	for _, w := range strings.Split(strings.ToLower(sel), ",") {
		if w = strings.TrimSpace(w); w != "" && strings.Contains(p, w) {
			return true
		}
	}
	return false
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// timed runs a command and returns its wall time and peak RSS (KB). The
// RSS comes from GNU time: Go starts children sharing its memory until
// exec, so their own rusage would count the test process too.
func timed(t testing.TB, env []string, name string, args ...string) (time.Duration, int64, string, error) {
	rssFile := filepath.Join(t.TempDir(), "rss")
	var cmd *exec.Cmd
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		cmd = exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rssFile, name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Every run starts with nothing left to write back from the one
	// before, so no tool pays for another's dirty pages.
	syscall.Sync()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var rss int64
	if b, rerr := os.ReadFile(rssFile); rerr == nil {
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			rss, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
		}
	}
	if err != nil {
		return wall, rss, out.String(), fmt.Errorf("%s: %v\n%s", name, err, tail(out.String(), 2000))
	}
	return wall, rss, out.String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func imapClient(t testing.TB, srv *dovecottest.Server, user string) *imapclient.Client {
	c, err := dialIMAP(dovecottest.Addr(srv.IMAPPort), user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialIMAP connects to addr in plain text and logs in as user.
func dialIMAP(addr, user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, dovecottest.Password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func countIMAP(t testing.TB, srv *dovecottest.Server, user string) int {
	c := imapClient(t, srv, user)
	defer c.Close()
	l, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range l {
		if m.Status != nil && m.Status.NumMessages != nil {
			n += int(*m.Status.NumMessages)
		}
	}
	return n
}

func TestBenchmark(t *testing.T) {
	n := envInt("MAILFERRY_BENCH_N", 0)
	if n == 0 {
		t.Skip("a benchmark: run bench/run.sh, or set MAILFERRY_BENCH_N")
	}
	runs := max(envInt("MAILFERRY_BENCH_RUNS", 3), 1)
	peers := envInt("MAILFERRY_BENCH_PEERS", 1) == 1
	srv := dovecottest.Start(t, dovecottest.Options{})
	c := generate(n)
	mb := float64(c.bytes) / (1 << 20)
	t.Logf("corpus: %d messages, %.1f MB", n, mb)

	src, popUser := srv.NewUser(t), srv.NewUser(t)
	c.writeMaildir(t, srv.Maildir(src), false)
	srv.Own(t, src)
	c.writeMaildir(t, srv.Maildir(popUser), true)
	srv.Own(t, popUser)
	work := t.TempDir()
	localMaildir := filepath.Join(work, "local")
	c.writeMaildir(t, localMaildir, false)
	// Let Dovecot index the source once, as a real account would be.
	if got := countIMAP(t, srv, src); got != n {
		t.Fatalf("source holds %d messages, want %d", got, n)
	}

	bin := filepath.Join(work, "mailferry")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := []string{"MAILFERRY_SRC_PASSWORD=" + dovecottest.Password, "MAILFERRY_DST_PASSWORD=" + dovecottest.Password}
	imapURL := func(user string) string {
		return fmt.Sprintf("imap://%s@127.0.0.1:%d?tls=none", user, srv.IMAPPort)
	}
	pop3URL := func(user string) string {
		return fmt.Sprintf("pop3://%s@127.0.0.1:%d?tls=none", user, srv.POP3Port)
	}
	var results []*result
	cell := func(tool, path string) *result {
		r := &result{tool: tool, path: path, msgs: n, mb: mb}
		results = append(results, r)
		return r
	}
	// measure runs fresh() then the command, runs times, checking each
	// result; then the no-op re-run on the last destination. measureN
	// does it for a corpus of n messages other than the main one.
	var measureN func(tool, path string, n int, mb float64, fresh func(i int) (cmd []string, check func() int))
	measure := func(tool, path string, fresh func(i int) (cmd []string, check func() int)) {
		measureN(tool, path, n, mb, fresh)
	}
	measureN = func(tool, path string, n int, mb float64, fresh func(i int) (cmd []string, check func() int)) {
		if !wantPath(path) {
			return
		}
		full, noop := cell(tool, path), cell(tool, path+" (no-op re-run)")
		full.msgs, full.mb, noop.msgs, noop.mb = n, mb, n, mb
		var cmd []string
		var check func() int
		for i := range runs {
			cmd, check = fresh(i)
			wall, rss, out, err := timed(t, env, cmd[0], cmd[1:]...)
			// mailferry runs without --quiet: its warnings are kept.
			if tool == "mailferry" && strings.Contains(out, "retrying") {
				// A run that had to retry is slow for a reason the
				// table would not show.
				full.note = "retried (see the test log)"
				t.Logf("%s %s, run %d, %v: %s", tool, path, i+1, wall.Round(time.Millisecond), tail(out, 3000))
			}
			if err != nil {
				full.note = "failed: " + strings.SplitN(err.Error(), "\n", 2)[0]
				t.Logf("%s %s: %v", tool, path, err)
				return
			}
			full.walls = append(full.walls, wall)
			full.rssKB = max(full.rssKB, rss)
			if got := check(); got != n {
				full.note = fmt.Sprintf("INCOMPLETE: %d of %d messages", got, n)
				if tool == "mailferry" {
					t.Errorf("mailferry %s: destination holds %d of %d messages", path, got, n)
				}
			}
		}
		for range runs {
			wall, rss, _, err := timed(t, env, cmd[0], cmd[1:]...)
			if err != nil {
				noop.note = "failed"
				return
			}
			noop.walls = append(noop.walls, wall)
			noop.rssKB = max(noop.rssKB, rss)
		}
		if got := check(); got != n {
			noop.note = fmt.Sprintf("DUPLICATES or LOSS: %d of %d messages", got, n)
			if tool == "mailferry" {
				t.Errorf("mailferry %s re-run: destination holds %d of %d", path, got, n)
			}
		}
	}

	// mailferry, every path; MAILFERRY_BENCH_FLAGS adds flags to each run
	// (an A/B of a setting, on the same data).
	extra := strings.Fields(os.Getenv("MAILFERRY_BENCH_FLAGS"))
	mf := func(args ...string) []string { return append(append([]string{bin}, args...), extra...) }
	measure("mailferry", "IMAP→Maildir", func(i int) ([]string, func() int) {
		d := filepath.Join(work, fmt.Sprintf("mf-i2m-%d", i))
		return mf("copy", imapURL(src), "maildir:"+d, "--checkpoint", d+".ckpt"), func() int { return sourcetest.CountMaildir(d) }
	})
	measure("mailferry", "IMAP→IMAP", func(i int) ([]string, func() int) {
		u := srv.NewUser(t)
		return mf("copy", imapURL(src), imapURL(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
	})
	measure("mailferry", "Maildir→IMAP", func(i int) ([]string, func() int) {
		u := srv.NewUser(t)
		return mf("copy", "maildir:"+localMaildir, imapURL(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
	})
	measure("mailferry", "POP3→Maildir", func(i int) ([]string, func() int) {
		d := filepath.Join(work, fmt.Sprintf("mf-p2m-%d", i))
		return mf("copy", pop3URL(popUser), "maildir:"+d, "--checkpoint", d+".ckpt"), func() int { return sourcetest.CountMaildir(d) }
	})

	if peers {
		if _, err := exec.LookPath("mbsync"); err == nil {
			measure("mbsync", "IMAP→Maildir", func(i int) ([]string, func() int) {
				d := filepath.Join(work, fmt.Sprintf("mbsync-%d", i))
				os.MkdirAll(d, 0o700)
				rc := filepath.Join(work, fmt.Sprintf("mbsyncrc-%d", i))
				os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount src
Host 127.0.0.1
Port %d
User %s
Pass "%s"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account src

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState *
`, srv.IMAPPort, src, dovecottest.Password, d, d)), 0o600)
				return []string{"mbsync", "-q", "-c", rc, "-a"}, func() int { return sourcetest.CountMaildir(d) }
			})
		} else {
			cell("mbsync", "IMAP→Maildir").note = "not installed"
		}
		// imapsync is not packaged and not vendored (its licence): the
		// script comes from IMAPSYNC=path, its Perl modules from Debian
		// (bench/run.sh installs them).
		if script := os.Getenv("IMAPSYNC"); script != "" {
			pw := filepath.Join(work, "imapsync.pass")
			os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600)
			port := strconv.Itoa(srv.IMAPPort)
			measure("imapsync", "IMAP→IMAP", func(i int) ([]string, func() int) {
				u := srv.NewUser(t)
				return []string{"perl", script, "--host1", "127.0.0.1", "--port1", port, "--user1", src, "--passfile1", pw,
						"--host2", "127.0.0.1", "--port2", port, "--user2", u, "--passfile2", pw,
						"--nossl1", "--nossl2", "--notls1", "--notls2", "--nolog", "--noreleasecheck", "--tmpdir", work},
					func() int { return countIMAP(t, srv, u) }
			})
		} else {
			cell("imapsync", "IMAP→IMAP").note = "not run: give IMAPSYNC=path to the script"
		}
		if _, err := exec.LookPath("offlineimap"); err == nil {
			measure("OfflineIMAP", "IMAP→Maildir", func(i int) ([]string, func() int) {
				d := filepath.Join(work, fmt.Sprintf("offlineimap-%d", i))
				os.MkdirAll(d, 0o700)
				rc := filepath.Join(work, fmt.Sprintf("offlineimaprc-%d", i))
				os.WriteFile(rc, []byte(fmt.Sprintf(`[general]
accounts = bench
metadata = %s.meta
[Account bench]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = %s
[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = %d
remoteuser = %s
remotepass = %s
ssl = no
starttls = no
`, d, d, srv.IMAPPort, src, dovecottest.Password)), 0o600)
				return []string{"offlineimap", "-c", rc, "-o", "-u", "quiet"}, func() int { return sourcetest.CountMaildir(d) }
			})
		} else {
			cell("OfflineIMAP", "IMAP→Maildir").note = "not installed"
		}
		if _, err := exec.LookPath("getmail"); err == nil {
			measure("getmail", "POP3→Maildir", func(i int) ([]string, func() int) {
				d := filepath.Join(work, fmt.Sprintf("getmail-%d", i))
				for _, s := range []string{"cur", "new", "tmp"} {
					os.MkdirAll(filepath.Join(d, s), 0o700)
				}
				deliverAs := ""
				if os.Getuid() == 0 {
					// getmail refuses to deliver as root: it drops to nobody.
					deliverAs = "user = nobody\n"
					os.Chmod(filepath.Dir(work), 0o755) // t.TempDir makes both 0700
					os.Chmod(work, 0o755)
					for _, s := range []string{"", "cur", "new", "tmp"} {
						os.Chown(filepath.Join(d, s), 65534, 65534)
					}
				}
				gd := filepath.Join(work, fmt.Sprintf("getmaildir-%d", i))
				os.MkdirAll(gd, 0o700)
				os.WriteFile(filepath.Join(gd, "getmailrc"), []byte(fmt.Sprintf(`[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = %d
username = %s
password = %s
[destination]
type = Maildir
path = %s/
%s[options]
read_all = false
delete = false
verbose = 0
`, srv.POP3Port, popUser, dovecottest.Password, d, deliverAs)), 0o600)
				return []string{"getmail", "--getmaildir", gd, "--rcfile", "getmailrc"}, func() int { return sourcetest.CountMaildir(d) }
			})
		} else {
			cell("getmail", "POP3→Maildir").note = "not installed"
		}
	}

	// The protocol limits, from a plain Go client on the same data.
	limit := func(path string, fn func() error, check func() int) {
		if !wantPath("limit " + path) {
			return
		}
		r := cell("(limit)", path)
		for range runs {
			start := time.Now()
			if err := fn(); err != nil {
				r.note = "failed: " + err.Error()
				return
			}
			r.walls = append(r.walls, time.Since(start))
		}
		if check != nil && check() != n {
			r.note = "INCOMPLETE"
		}
	}
	limit("IMAP FETCH, ranged, a connection per folder", func() error { return fetchAll(t, srv, src) }, nil)
	limit("POP3 RETR, one connection", func() error { return retrAll(srv, popUser, n) }, nil)
	deliverDir := 0
	limit("Maildir delivery from memory: write, one syncfs per 16, rename (the disk)", func() error {
		deliverDir++
		return deliverAll(filepath.Join(work, fmt.Sprintf("deliver-%d", deliverDir)), c)
	}, nil)
	var appendUser string
	limit("APPEND, pipelined, a connection per folder", func() error {
		appendUser = srv.NewUser(t)
		return appendAll(t, srv, appendUser, c)
	}, func() int { return countIMAP(t, srv, appendUser) })
	// go-imap waits for "+" before each literal over 4 KB; these send
	// every message as a LITERAL+ literal right behind its command, one
	// message per APPEND or 16 per MULTIAPPEND (RFC 3502).
	for _, batch := range []int{1, 16} {
		what := "APPEND with LITERAL+, pipelined, a connection per folder"
		if batch > 1 {
			what = fmt.Sprintf("MULTIAPPEND with LITERAL+, %d per command, a connection per folder", batch)
		}
		limit(what, func() error {
			appendUser = srv.NewUser(t)
			return rawAppendAll(dovecottest.Addr(srv.IMAPPort), appendUser, c, batch)
		}, func() int { return countIMAP(t, srv, appendUser) })
	}

	// With latency: IMAP→IMAP through a proxy that holds every byte 20 ms
	// each way (a 40 ms round trip, as tc netem would on loopback), on the
	// first MAILFERRY_BENCH_LATENCY_N messages (default 500), beside a
	// client doing what imapsync does: one message at a time, a UID FETCH
	// then an APPEND. imapsync does more per message, so this baseline is
	// if anything faster than imapsync would be.
	if ln := min(envInt("MAILFERRY_BENCH_LATENCY_N", 500), n); ln > 0 && wantPath("latency") {
		sub := &corpus{n: ln, msgs: c.msgs[:ln]}
		for _, m := range sub.msgs {
			sub.bytes += int64(len(m.content))
		}
		smb := float64(sub.bytes) / (1 << 20)
		latSrc := srv.NewUser(t)
		sub.writeMaildir(t, srv.Maildir(latSrc), false)
		srv.Own(t, latSrc)
		if got := countIMAP(t, srv, latSrc); got != ln {
			t.Fatalf("latency source holds %d messages, want %d", got, ln)
		}
		px := faultproxy.Start(t, dovecottest.Addr(srv.IMAPPort), &faultproxy.Proxy{Delay: 20 * time.Millisecond})
		viaProxy := func(user string) string { return fmt.Sprintf("imap://%s@%s?tls=none", user, px.Addr) }
		path := "IMAP→IMAP, latency 20 ms each way"
		measureN("mailferry", path, ln, smb, func(i int) ([]string, func() int) {
			u := srv.NewUser(t)
			return mf("copy", viaProxy(latSrc), viaProxy(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
		})
		r := cell("(baseline)", path+": one message at a time, FETCH then APPEND (imapsync's way), 1 run")
		r.msgs, r.mb = ln, smb
		u := srv.NewUser(t)
		start := time.Now()
		if err := oneByOne(px.Addr, latSrc, u); err != nil {
			r.note = "failed: " + err.Error()
		} else if got := countIMAP(t, srv, u); got != ln {
			r.note = fmt.Sprintf("INCOMPLETE: %d of %d", got, ln)
		} else {
			r.walls = append(r.walls, time.Since(start))
		}
	}

	printTable(t, results, runs)
}

// oneByOne copies every folder of srcUser to dstUser through addr the way
// imapsync does: list a folder's UIDs, then for each message a UID FETCH of
// its body, flags and date, then an APPEND, waiting for each answer.
func oneByOne(addr, srcUser, dstUser string) error {
	src, err := dialIMAP(addr, srcUser)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := dialIMAP(addr, dstUser)
	if err != nil {
		return err
	}
	defer dst.Close()
	boxes, err := src.List("", "*", nil).Collect()
	if err != nil {
		return err
	}
	for _, b := range boxes {
		if slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		if _, err := src.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		if b.Mailbox != "INBOX" {
			dst.Create(b.Mailbox, nil).Wait()
		}
		list, err := src.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			return err
		}
		for _, l := range list {
			msgs, err := src.Fetch(imap.UIDSetNum(l.UID), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil || len(msgs) != 1 {
				return fmt.Errorf("fetch %s %d: %d messages, %v", b.Mailbox, l.UID, len(msgs), err)
			}
			m := msgs[0]
			var body []byte
			for _, v := range m.BodySection {
				body = v.Bytes
			}
			var flags []imap.Flag
			for _, f := range m.Flags {
				if f != `\Recent` {
					flags = append(flags, f)
				}
			}
			cmd := dst.Append(b.Mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			cmd.Write(body)
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				return err
			}
		}
	}
	return nil
}

func fetchAll(t testing.TB, srv *dovecottest.Server, user string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(folders))
	for _, f := range folders {
		f := f.mailbox
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := imapClient(t, srv, user)
			defer c.Close()
			if _, err := c.Select(f, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				errs <- err
				return
			}
			fc := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			for m := fc.Next(); m != nil; m = fc.Next() {
				for it := m.Next(); it != nil; it = m.Next() {
					if b, ok := it.(imapclient.FetchItemDataBodySection); ok {
						io.Copy(io.Discard, b.Literal)
					}
				}
			}
			errs <- fc.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deliverAll writes the corpus into a fresh Maildir the way a safe
// delivery must, from memory and with nothing else to do: the floor the
// disk sets for any tool that fsyncs what it stores.
func deliverAll(dir string, c *corpus) error {
	for _, sub := range []string{"tmp", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	cur, err := os.Open(filepath.Join(dir, "cur"))
	if err != nil {
		return err
	}
	defer cur.Close()
	const batch = 16
	for i := 0; i < len(c.msgs); i += batch {
		var names []string
		for k := i; k < min(i+batch, len(c.msgs)); k++ {
			tmp := filepath.Join(dir, "tmp", strconv.Itoa(k))
			if err := os.WriteFile(tmp, c.msgs[k].content, 0o600); err != nil {
				return err
			}
			names = append(names, tmp)
		}
		if err := unix.Syncfs(int(cur.Fd())); err != nil {
			return err
		}
		for _, tmp := range names {
			if err := os.Rename(tmp, filepath.Join(dir, "cur", filepath.Base(tmp)+":2,S")); err != nil {
				return err
			}
		}
		if err := cur.Sync(); err != nil {
			return err
		}
	}
	return nil
}

func retrAll(srv *dovecottest.Server, user string, n int) error {
	c, err := net.Dial("tcp", dovecottest.Addr(srv.POP3Port))
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	line := func() string { l, _ := r.ReadString('\n'); return l }
	line()
	fmt.Fprintf(w, "USER %s\r\nPASS %s\r\n", user, dovecottest.Password)
	w.Flush()
	line()
	if l := line(); !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("login: %s", l)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "RETR %d\r\n", i)
		w.Flush()
		if l := line(); !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("RETR %d: %s", i, l)
		}
		for {
			l, err := r.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return err
			}
			if string(l) == ".\r\n" {
				break
			}
		}
	}
	fmt.Fprint(w, "QUIT\r\n")
	return w.Flush()
}

func appendAll(t testing.TB, srv *dovecottest.Server, user string, c *corpus) error {
	byMailbox := c.byMailbox()
	var wg sync.WaitGroup
	errs := make(chan error, len(byMailbox))
	for mbox, msgs := range byMailbox {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := imapClient(t, srv, user)
			defer cl.Close()
			if mbox != "INBOX" {
				cl.Create(mbox, nil).Wait()
			}
			var cmds []*imapclient.AppendCommand
			for _, m := range msgs {
				cmd := cl.Append(mbox, int64(len(m.content)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: m.date})
				cmd.Write(m.content)
				cmd.Close()
				cmds = append(cmds, cmd)
				if len(cmds) >= 64 { // a window of APPENDs in flight
					if _, err := cmds[0].Wait(); err != nil {
						errs <- err
						return
					}
					cmds = cmds[1:]
				}
			}
			for _, cmd := range cmds {
				if _, err := cmd.Wait(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// rawAppendAll appends the corpus to user's mailboxes over one plain
// connection per folder, writing every command at once with LITERAL+
// literals, batch messages per command, while another goroutine reads the
// answers.
func rawAppendAll(addr, user string, c *corpus, batch int) error {
	byMailbox := c.byMailbox()
	errs := make(chan error, len(byMailbox))
	for mbox, msgs := range byMailbox {
		go func() { errs <- rawAppend(addr, user, mbox, msgs, batch) }()
	}
	var err error
	for range byMailbox {
		err = errors.Join(err, <-errs)
	}
	return err
}

func rawAppend(addr, user, mailbox string, msgs []benchMsg, batch int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriterSize(conn, 64<<10)
	// answer reads up to the tagged answer to tag.
	answer := func(tag string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					return errors.New(strings.TrimSpace(l))
				}
				return nil
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil { // greeting
		return err
	}
	// The test password holds a space and 8-bit text: a literal.
	fmt.Fprintf(w, "l LOGIN %s {%d+}\r\n%s\r\nc CREATE %q\r\n", user, len(dovecottest.Password), dovecottest.Password, mailbox)
	w.Flush()
	if err := answer("l"); err != nil {
		return err
	}
	answer("c") // INBOX exists already
	var cmds int
	done := make(chan error, 1)
	go func() {
		var err error
		for range (len(msgs) + batch - 1) / batch {
			if err = answer(fmt.Sprintf("a%d", cmds)); err != nil {
				break
			}
			cmds++
		}
		done <- err
	}()
	for i := 0; i < len(msgs); i += batch {
		fmt.Fprintf(w, "a%d APPEND %q", i/batch, mailbox)
		for _, m := range msgs[i:min(i+batch, len(msgs))] {
			fmt.Fprintf(w, " (\\Seen) %q {%d+}\r\n", m.date.Format("02-Jan-2006 15:04:05 -0700"), len(m.content))
			w.Write(m.content)
		}
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return <-done
}

func printTable(t *testing.T, results []*result, runs int) {
	base := map[string]time.Duration{}
	for _, r := range results {
		if r.tool == "mailferry" && len(r.walls) > 0 {
			base[r.path] = r.median()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| tool | path | messages | MB | wall s (median of %d) | msgs/s | MB/s | peak RSS MB | mailferry is N× faster | note |\n|---|---|---|---|---|---|---|---|---|---|\n", runs)
	for _, r := range results {
		if len(r.walls) == 0 {
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | | | | | | %s |\n", r.tool, r.path, r.msgs, r.mb, r.note)
			continue
		}
		m := r.median().Seconds()
		ratio := ""
		if bw, ok := base[r.path]; ok && r.tool != "mailferry" && r.tool != "(limit)" {
			ratio = fmt.Sprintf("%.1f×", m/bw.Seconds())
		}
		rss := ""
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%.0f", float64(r.rssKB)/1024)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.2f | %.0f | %.1f | %s | %s | %s |\n", r.tool, r.path, r.msgs, r.mb, m, float64(r.msgs)/m, r.mb/m, rss, ratio, r.note)
	}
	t.Log(b.String())
	if out := os.Getenv("MAILFERRY_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

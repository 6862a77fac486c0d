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
// messages for the 20 ms latency run (default 500, 0 to leave it out),
// MAILFERRY_BENCH_BASELINE a second mailferry binary timed on the same
// paths and data (an A/B of a change).
// Without MAILFERRY_BENCH_N the test is skipped: it is a benchmark, run on
// purpose.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
	"github.com/mailferry/mailferry/source/sourcetest"
)

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

	bin := buildBinary(t, work)
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
	// does it for a corpus of n messages other than the main one, and for
	// several tools at once (fresh's k says which), their runs taken in
	// turn, the order turned round each run: one A/B's builds take the
	// same path A, B, B, A, A, B..., so neither gains from coming first
	// or second (run after run, the second of two builds timed 20% faster
	// on IMAP paths, whichever it was; taken A, B, A, B, one build against
	// itself timed 1.36 s and 1.43 s through 20 ms).
	var measureN func(tools []string, path string, n int, mb float64, fresh func(k, i int) (cmd []string, check func() int))
	measure := func(tool, path string, fresh func(i int) (cmd []string, check func() int)) {
		measureN([]string{tool}, path, n, mb, func(_, i int) ([]string, func() int) { return fresh(i) })
	}
	measureN = func(tools []string, path string, n int, mb float64, fresh func(k, i int) (cmd []string, check func() int)) {
		if !wantPath(path) {
			return
		}
		type job struct {
			tool       string
			full, noop *result
			cmd        []string
			check      func() int
			failed     bool
		}
		jobs := make([]*job, len(tools))
		for k, tool := range tools {
			jobs[k] = &job{tool: tool, full: cell(tool, path)}
		}
		for k, tool := range tools {
			jobs[k].noop = cell(tool, path+" (no-op re-run)")
			jobs[k].full.msgs, jobs[k].full.mb, jobs[k].noop.msgs, jobs[k].noop.mb = n, mb, n, mb
		}
		for i := range runs {
			for _, k := range inTurn(i, len(jobs)) {
				j := jobs[k]
				if j.failed {
					continue
				}
				j.cmd, j.check = fresh(k, i)
				cpu0 := busyCPU()
				wall, u, out, err := timed(t, env, j.cmd[0], j.cmd[1:]...)
				// What bounds a run: the machine's CPU beside the tool's
				// own says how much the servers took of the two cores.
				t.Logf("%s, %s, run %d: %v; its CPU %.2f s, %s", j.tool, path, i+1,
					wall.Round(10*time.Millisecond), u.cpu.Seconds(), machineCPU(cpu0, wall))
				// mailferry runs without --quiet: its warnings are kept.
				if isMailferry(j.tool) && strings.Contains(out, "retrying") {
					// A run that had to retry is slow for a reason the
					// table would not show.
					j.full.note = "retried (see the test log)"
					t.Logf("%s %s, run %d, %v: %s", j.tool, path, i+1, wall.Round(time.Millisecond), tail(out, 3000))
				}
				if err != nil {
					j.full.note = "failed: " + strings.SplitN(err.Error(), "\n", 2)[0]
					t.Logf("%s %s: %v", j.tool, path, err)
					j.failed = true
					continue
				}
				j.full.add(wall, u)
				if got := j.check(); got != n {
					j.full.note = fmt.Sprintf("INCOMPLETE: %d of %d messages", got, n)
					if isMailferry(j.tool) {
						t.Errorf("%s %s: destination holds %d of %d messages", j.tool, path, got, n)
					}
				}
			}
		}
		for range runs {
			for _, j := range jobs {
				if j.failed || j.noop.note != "" {
					continue
				}
				wall, u, _, err := timed(t, env, j.cmd[0], j.cmd[1:]...)
				if err != nil {
					j.noop.note = "failed"
					continue
				}
				j.noop.add(wall, u)
			}
		}
		for _, j := range jobs {
			if j.failed || j.noop.note != "" {
				continue
			}
			if got := j.check(); got != n {
				j.noop.note = fmt.Sprintf("DUPLICATES or LOSS: %d of %d messages", got, n)
				if isMailferry(j.tool) {
					t.Errorf("%s %s re-run: destination holds %d of %d", j.tool, path, got, n)
				}
			}
		}
	}

	// mailferry, every path; MAILFERRY_BENCH_FLAGS adds flags to each run
	// (an A/B of a setting, on the same data), MAILFERRY_BENCH_BASELINE
	// names another build (an A/B of a change: the binary built from the
	// commit before it), timed on every path in turn with this one.
	extra := strings.Fields(os.Getenv("MAILFERRY_BENCH_FLAGS"))
	type build struct{ tool, bin, tag string }
	builds := []build{{"mailferry", bin, "mf"}}
	if base := os.Getenv("MAILFERRY_BENCH_BASELINE"); base != "" {
		builds = append(builds, build{baselineTool, base, "base"})
	}
	tools := make([]string, len(builds))
	for k, b := range builds {
		tools[k] = b.tool
	}
	mf := func(k int, args ...string) []string {
		return append(append([]string{builds[k].bin}, args...), extra...)
	}
	dir := func(k int, what string, i int) string {
		return filepath.Join(work, fmt.Sprintf("%s-%s-%d", builds[k].tag, what, i))
	}
	measureN(tools, "IMAP→Maildir", n, mb, func(k, i int) ([]string, func() int) {
		d := dir(k, "i2m", i)
		return mf(k, "copy", imapURL(src), "maildir:"+d, "--checkpoint", d+".ckpt"), func() int { return sourcetest.CountMaildir(d) }
	})
	for k, b := range builds {
		if fi, err := os.Stat(dir(k, "i2m", runs-1) + ".ckpt"); err == nil {
			t.Logf("%s: checkpoint after IMAP→Maildir of %d messages: %.1f MB", b.tool, n, float64(fi.Size())/(1<<20))
		}
	}
	measureN(tools, "IMAP→IMAP", n, mb, func(k, i int) ([]string, func() int) {
		u := srv.NewUser(t)
		return mf(k, "copy", imapURL(src), imapURL(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
	})
	measureN(tools, "Maildir→IMAP", n, mb, func(k, i int) ([]string, func() int) {
		u := srv.NewUser(t)
		return mf(k, "copy", "maildir:"+localMaildir, imapURL(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
	})
	measureN(tools, "POP3→Maildir", n, mb, func(k, i int) ([]string, func() int) {
		d := dir(k, "p2m", i)
		return mf(k, "copy", pop3URL(popUser), "maildir:"+d, "--checkpoint", d+".ckpt"), func() int { return sourcetest.CountMaildir(d) }
	})
	// The A/B of POP3 PIPELINING, on the same data in the same run.
	measureN(tools, "POP3→Maildir, ?pipelining=off", n, mb, func(k, i int) ([]string, func() int) {
		d := dir(k, "p2m-nopipe", i)
		return mf(k, "copy", pop3URL(popUser)+"&pipelining=off", "maildir:"+d, "--checkpoint", d+".ckpt"), func() int { return sourcetest.CountMaildir(d) }
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
		for i := range runs {
			cpu0 := busyCPU()
			start := time.Now()
			if err := fn(); err != nil {
				r.note = "failed: " + err.Error()
				return
			}
			wall := time.Since(start)
			r.walls = append(r.walls, wall)
			t.Logf("(limit), %s, run %d: %v; %s", path, i+1, wall.Round(10*time.Millisecond), machineCPU(cpu0, wall))
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
	// IMAP→IMAP's own limit: the ranged FETCH and MULTIAPPEND above, at
	// once, each body appended as it arrives; the reading shares the two
	// cores with the writing, which the MULTIAPPEND row alone does not.
	limit("IMAP FETCH, ranged, into MULTIAPPEND with LITERAL+, 16 per command, a connection per folder each", func() error {
		appendUser = srv.NewUser(t)
		return fetchIntoAppend(t, srv, src, appendUser, 16)
	}, func() int { return countIMAP(t, srv, appendUser) })

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
		measureN(tools, path, ln, smb, func(k, i int) ([]string, func() int) {
			u := srv.NewUser(t)
			return mf(k, "copy", viaProxy(latSrc), viaProxy(u), "--checkpoint", filepath.Join(work, u+".ckpt")), func() int { return countIMAP(t, srv, u) }
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
		// A nightly backup's re-run: one new message in each folder since
		// the last run, through the same link. Each run has a source of
		// its own, the latency row's messages and one more a folder; the
		// copy before the re-run is not timed.
		measureN(tools, path+", re-run after a new message in each folder", len(folders), 0, func(k, i int) ([]string, func() int) {
			s, u := srv.NewUser(t), srv.NewUser(t)
			sub.writeMaildir(t, srv.Maildir(s), false)
			srv.Own(t, s)
			ckpt := filepath.Join(work, u+".ckpt")
			first := mf(k, "copy", viaProxy(s), viaProxy(u), "--checkpoint", ckpt)
			if _, _, out, err := timed(t, env, first[0], first[1:]...); err != nil {
				t.Fatalf("the copy before the re-run: %v\n%s", err, tail(out, 2000))
			}
			addOneEach(t, srv.Maildir(s), fmt.Sprintf("%d-%d", k, i))
			srv.Own(t, s)
			// What the re-run added: one a folder, unless it lost or doubled some.
			return mf(k, "copy", viaProxy(s), viaProxy(u), "--checkpoint", ckpt), func() int { return countIMAP(t, srv, u) - ln }
		})
	}

	printTable(t, results, runs)
}

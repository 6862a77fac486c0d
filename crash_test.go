package main

import (
	"fmt"
	"math/rand/v2"
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

	"github.com/mailferry/mailferry/internal/dovecottest"
	sinkimap "github.com/mailferry/mailferry/sink/imap"
	sinkmbox "github.com/mailferry/mailferry/sink/mbox"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcpop3 "github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/source/sourcetest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds mailferry once per test run.
func binary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailferry-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mailferry")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// crashKills is how many times each path is killed: MAILFERRY_CRASH_KILLS
// (CI sets 50), else 8 so the quick run stays quick.
func crashKills() int {
	if n, err := strconv.Atoi(os.Getenv("MAILFERRY_CRASH_KILLS")); err == nil && n > 0 {
		return n
	}
	return 8
}

func crashFixtures(n int) []sourcetest.Fixture {
	var fx []sourcetest.Fixture
	for i := range n {
		body := strings.Repeat(fmt.Sprintf("crash test line %d\r\n", i), 1+(i*53)%400)
		content := fmt.Sprintf("Message-ID: <%d@crash.test>\r\nSubject: %d\r\n\r\n%s", i, i, body)
		if i%10 == 0 {
			content = fmt.Sprintf("Subject: no Message-ID %d\r\n\r\n%s", i, body) // keyed by content
		}
		fx = append(fx, sourcetest.Fixture{Name: fmt.Sprint(i), Folder: []string{"INBOX", "Lists", "Work/2024"}[i%3],
			Content: []byte(content), Flags: []string{`\Seen`}, Date: time.Date(2023, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	return fx
}

// crashCycles kills mailferry with SIGKILL at random instants until kills
// runs have died mid-way. It works in cycles: each starts on a fresh
// destination (fresh returns the arguments and the check of the result),
// kills runs at a random moment within the time an uninterrupted run takes
// until one finishes, lets a last run complete, and checks the result, so
// kills land at every stage: connecting, listing, mid-body, between a write
// and its checkpoint entry, and at the end. Every fifth kill also deletes
// the checkpoint, so the next run must rebuild from the destination.
//
// pause is added to the kill window of a run that follows a kill: a run
// whose predecessor died waits that long before it looks at an IMAP
// destination (plan.Options.CrashGrace).
func crashCycles(t *testing.T, env []string, kills int, pause time.Duration, fresh func(t *testing.T) ([]string, func(t *testing.T))) {
	t.Helper()
	bin := binary(t)
	run := func(args []string) error {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	args, check := fresh(t)
	start := time.Now()
	if err := run(args); err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	window := time.Since(start)
	check(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	killed, cycles := 0, 0
	for killed < kills {
		cycles++
		args, check := fresh(t)
		for tries := 0; tries < 4*kills && killed < kills; tries++ {
			w := window
			if tries > 0 {
				w += pause
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(w))))
			cmd.Process.Signal(syscall.SIGKILL)
			if err := cmd.Wait(); err == nil {
				break // finished before the kill: the cycle is done
			}
			killed++
			// Without a checkpoint, --dedup none cannot know what it copied:
			// copying everything again is what that mode means.
			if killed%5 == 0 && !slices.Contains(args, "none") {
				for i, a := range args {
					if a == "--checkpoint" {
						os.Remove(args[i+1])
					}
				}
				// Without its checkpoint the next run cannot know that its
				// predecessor died, so it does not wait out the late-commit
				// grace; a person deleting a checkpoint takes longer than that.
				time.Sleep(pause)
			}
		}
		if err := run(args); err != nil {
			t.Fatalf("cycle %d, final run: %v", cycles, err)
		}
		check(t)
	}
	t.Logf("%d kills in %d cycles (a full run takes %v)", killed, cycles, window.Round(time.Millisecond))
}

// TestCrashMatrix kills mailferry with SIGKILL at random instants on every
// path against Dovecot, resumes, and checks with verify --deep and by
// counting that every message is at the destination exactly once.
func TestCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary many times; skipped with -short")
	}
	const n = 600
	kills := crashKills()
	fx := crashFixtures(n)
	env := []string{"MAILFERRY_SRC_PASSWORD=" + dovecottest.Password, "MAILFERRY_DST_PASSWORD=" + dovecottest.Password}
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	srv := dovecottest.Start(t, dovecottest.Options{})
	noUIDPlus := dovecottest.Start(t, dovecottest.Options{IMAPCapability: "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE SPECIAL-USE"})

	// One seeded IMAP account and one seeded Maildir serve every path.
	imapSrc := srv.NewUser(t)
	sinktest.Put(t, imapStore(t, srv, imapSrc), fx)
	mdSrc := filepath.Join(t.TempDir(), "src")
	md, err := sinkmaildirNew(mdSrc)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.Put(t, md, fx)

	countIMAP := func(t *testing.T, s *dovecottest.Server, user string) int {
		total := 0
		for _, f := range []string{"INBOX", "Lists", "Work/2024"} {
			imapStore(t, s, user).List(t.Context(), f, func(source.Message) error { total++; return nil })
		}
		return total
	}
	verifyDeep := func(t *testing.T, src, dst string) {
		code, out, stderr := cli(t, "verify", src, dst, "--deep")
		if code != exitOK {
			t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
		}
	}

	checkIMAP := func(s *dovecottest.Server, user, src, dst string) func(t *testing.T) {
		return func(t *testing.T) {
			if got := countIMAP(t, s, user); got != n {
				t.Fatalf("destination holds %d messages, want %d", got, n)
			}
			verifyDeep(t, src, dst)
		}
	}
	paths := []struct {
		name  string
		pause time.Duration
		fresh func(t *testing.T) ([]string, func(t *testing.T))
	}{
		{"IMAP to IMAP", sinkimap.Kind.Props.CrashGrace, func(t *testing.T) ([]string, func(t *testing.T)) {
			u := srv.NewUser(t)
			src, dst := imapURL(srv, imapSrc), imapURL(srv, u)
			return []string{"copy", src, dst, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, checkIMAP(srv, u, src, dst)
		}},
		{"Maildir to IMAP", sinkimap.Kind.Props.CrashGrace, func(t *testing.T) ([]string, func(t *testing.T)) {
			u := srv.NewUser(t)
			src, dst := "maildir:"+mdSrc, imapURL(srv, u)
			return []string{"copy", src, dst, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, checkIMAP(srv, u, src, dst)
		}},
		{"Maildir to IMAP without UIDPLUS", sinkimap.Kind.Props.CrashGrace, func(t *testing.T) ([]string, func(t *testing.T)) {
			u := noUIDPlus.NewUser(t)
			src, dst := "maildir:"+mdSrc, imapURL(noUIDPlus, u)
			return []string{"copy", src, dst, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, checkIMAP(noUIDPlus, u, src, dst)
		}},
		{"IMAP to Maildir", 0, func(t *testing.T) ([]string, func(t *testing.T)) {
			d := filepath.Join(t.TempDir(), "dst")
			src, dst := imapURL(srv, imapSrc), "maildir:"+d
			return []string{"copy", src, dst, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, func(t *testing.T) {
				if got := sourcetest.CountMaildir(d); got != n {
					t.Fatalf("destination holds %d messages, want %d", got, n)
				}
				verifyDeep(t, src, dst)
			}
		}},
	}
	for _, dedup := range []string{"message-id", "none"} {
		paths = append(paths, struct {
			name  string
			pause time.Duration
			fresh func(t *testing.T) ([]string, func(t *testing.T))
		}{"IMAP to mbox, --dedup " + dedup, 0, func(t *testing.T) ([]string, func(t *testing.T)) {
			d := filepath.Join(t.TempDir(), "dst")
			src, dst := imapURL(srv, imapSrc), "mbox:"+d
			return []string{"copy", src, dst, "--dedup", dedup, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, func(t *testing.T) {
				if got := countMbox(t, d); got != n {
					t.Fatalf("destination holds %d messages, want %d", got, n)
				}
				verifyDeep(t, src, dst)
			}
		}})
	}
	// The crash between a write and its record, in the dedup modes that
	// rely on it least: --dedup none (write intents) and content.
	for _, dedup := range []string{"none", "content"} {
		paths = append(paths, struct {
			name  string
			pause time.Duration
			fresh func(t *testing.T) ([]string, func(t *testing.T))
		}{"IMAP to IMAP, --dedup " + dedup, sinkimap.Kind.Props.CrashGrace, func(t *testing.T) ([]string, func(t *testing.T)) {
			u := srv.NewUser(t)
			src, dst := imapURL(srv, imapSrc), imapURL(srv, u)
			return []string{"copy", src, dst, "--dedup", dedup, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, checkIMAP(srv, u, src, dst)
		}}, struct {
			name  string
			pause time.Duration
			fresh func(t *testing.T) ([]string, func(t *testing.T))
		}{"IMAP to Maildir, --dedup " + dedup, 0, func(t *testing.T) ([]string, func(t *testing.T)) {
			d := filepath.Join(t.TempDir(), "dst")
			src, dst := imapURL(srv, imapSrc), "maildir:"+d
			return []string{"copy", src, dst, "--dedup", dedup, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}, func(t *testing.T) {
				if got := sourcetest.CountMaildir(d); got != n {
					t.Fatalf("destination holds %d messages, want %d", got, n)
				}
				verifyDeep(t, src, dst)
			}
		}})
	}
	for _, move := range []bool{false, true} {
		paths = append(paths, struct {
			name  string
			pause time.Duration
			fresh func(t *testing.T) ([]string, func(t *testing.T))
		}{fmt.Sprintf("POP3 to Maildir, move=%v", move), 0, func(t *testing.T) ([]string, func(t *testing.T)) {
			user := srv.NewUser(t)
			var msgs [][]byte
			for _, f := range fx {
				msgs = append(msgs, f.Content)
			}
			srv.Deliver(t, user, msgs, nil)
			d := filepath.Join(t.TempDir(), "dst")
			args := []string{"copy", pop3URL(srv, user), "maildir:" + d, "--checkpoint", filepath.Join(t.TempDir(), "ckpt"), "--quiet"}
			if move {
				args = append(args, "--delete-after-copy")
			}
			return args, func(t *testing.T) {
				if got := sourcetest.CountMaildir(d); got != n {
					t.Fatalf("destination holds %d messages, want %d", got, n)
				}
				remaining := 0
				p, err := srcpop3.Open(t.Context(), srcpop3.Config{Addr: dovecottest.Addr(srv.POP3SPort), TLS: srcpop3.TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password})
				if err != nil {
					t.Fatal(err)
				}
				p.List(t.Context(), "INBOX", func(source.Message) error { remaining++; return nil })
				p.Close()
				if want := map[bool]int{true: 0, false: n}[move]; remaining != want {
					t.Fatalf("the POP3 mailbox has %d messages, want %d", remaining, want)
				}
			}
		}})
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			crashCycles(t, env, kills, p.pause, p.fresh)
		})
	}
}

// countMbox counts the messages of an mbox tree mailferry wrote.
func countMbox(t *testing.T, dir string) int {
	t.Helper()
	s, err := sinkmbox.New(dir, sinkmbox.LayoutMbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	folders, err := s.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range folders {
		if err := s.List(t.Context(), f.Name, func(source.Message) error { total++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return total
}

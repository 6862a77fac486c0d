package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
	"github.com/mailferry/mailferry/plan"
	sinkimap "github.com/mailferry/mailferry/sink/imap"
	sinkmaildir "github.com/mailferry/mailferry/sink/maildir"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/sourcetest"
)

func imapURL(srv *dovecottest.Server, user string) string {
	return fmt.Sprintf("imaps://%s@127.0.0.1:%d?ca_file=%s", user, srv.IMAPSPort, srv.CAFile)
}

// migrationPair starts a Dovecot with a source and a destination user,
// and gives mailferry both passwords the way a user would (environment).
func migrationPair(t *testing.T) (srv *dovecottest.Server, src, dst string) {
	t.Helper()
	srv = dovecottest.Start(t, dovecottest.Options{})
	src, dst = srv.NewUser(t), srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	return srv, src, dst
}

func imapStore(t *testing.T, srv *dovecottest.Server, user string) *sinkimap.Sink {
	t.Helper()
	s, err := sinkimap.Open(context.Background(), srcimap.Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: srcimap.TLSImplicit, CAFile: srv.CAFile, User: user, Password: dovecottest.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// imapSafe is the corpus and generated set less what IMAP cannot carry
// (NUL bytes, 0-byte messages), which sink/imap tests refuse by name.
func imapSafe(t *testing.T) []sourcetest.Fixture {
	out, _ := imapCarried(sourcetest.DefaultFixtures(t))
	return out
}

// imapCarried splits fixtures into those IMAP carries and the number it
// refuses (NUL bytes, 0 bytes).
func imapCarried(fx []sourcetest.Fixture) (carried []sourcetest.Fixture, refused int) {
	for _, f := range fx {
		if f.HasNUL() || len(f.Content) == 0 {
			refused++
		} else {
			carried = append(carried, f)
		}
	}
	return carried, refused
}

func copyJSON(t *testing.T, args ...string) plan.Summary {
	t.Helper()
	code, out, stderr := cli(t, append(args, "--json")...)
	if code != exitOK {
		t.Fatalf("mailferry %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	var sum plan.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return sum
}

var bodyCount = regexp.MustCompile(`imap\((\w+)\)<[^>]*><[^>]*>: Info: Disconnected: .* body_count=(\d+)`)

// bodiesFetched sums Dovecot's own count of bodies sent to user, and the
// number of sessions it has logged out.
func bodiesFetched(srv *dovecottest.Server, user string) (bodies, sessions int) {
	for _, m := range bodyCount.FindAllStringSubmatch(srv.Log(), -1) {
		if m[1] == user {
			n, _ := strconv.Atoi(m[2])
			bodies += n
			sessions++
		}
	}
	return bodies, sessions
}

// IMAP to IMAP (migration), then IMAP to Maildir (backup) and that Maildir
// back to IMAP (restore): every message, folder, flag, keyword and
// INTERNALDATE arrives, checked by the source conformance suite on each
// destination; re-runs copy nothing and fetch no bodies.
func TestIMAPEndToEnd(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	srcUser, dstUser, restoreUser := srv.NewUser(t), srv.NewUser(t), srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	fx := imapSafe(t)
	sinktest.Put(t, imapStore(t, srv, srcUser), fx)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "migrate.ckpt")
	backup := filepath.Join(dir, "backup")

	t.Run("IMAPToIMAP", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
			New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
				sum := copyJSON(t, "copy", imapURL(srv, srcUser), imapURL(srv, dstUser), "--dedup", "none", "--checkpoint", ckpt)
				if sum.Copied != len(fx) {
					t.Fatalf("copied %d of %d: %+v", sum.Copied, len(fx), sum.Errors)
				}
				return imapStore(t, srv, dstUser)
			},
		})
	})

	t.Run("RerunFetchesNoBodies", func(t *testing.T) {
		before, sessions := bodiesFetched(srv, srcUser)
		sum := copyJSON(t, "copy", imapURL(srv, srcUser), imapURL(srv, dstUser), "--dedup", "none", "--checkpoint", ckpt)
		if sum.Copied != 0 || sum.AlreadyPresent != len(fx) {
			t.Fatalf("re-run: %d copied, %d present", sum.Copied, sum.AlreadyPresent)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			after, s := bodiesFetched(srv, srcUser)
			if s > sessions {
				if after != before {
					t.Fatalf("the re-run fetched %d bodies", after-before)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the re-run's sessions never logged out")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("FlagsCarriedOnRerun", func(t *testing.T) {
		src := imapStore(t, srv, srcUser)
		var m source.Message
		src.List(context.Background(), "Sent", func(x source.Message) error { m = x; return nil })
		want := []string{`\Answered`, `\Seen`, "$Label7"}
		if err := src.SetFlags(context.Background(), "Sent", m.ID, want); err != nil {
			t.Fatal(err)
		}
		sum := copyJSON(t, "copy", imapURL(srv, srcUser), imapURL(srv, dstUser), "--dedup", "none", "--checkpoint", ckpt)
		if sum.FlagsUpdated != 1 || sum.Copied != 0 {
			t.Fatalf("re-run after a flag change: %+v", sum)
		}
		found := false
		imapStore(t, srv, dstUser).List(context.Background(), "Sent", func(x source.Message) error {
			found = found || source.SameFlags(x.Flags, want)
			return nil
		})
		if !found {
			t.Fatal("no destination message has the new flags")
		}
		src.SetFlags(context.Background(), "Sent", m.ID, m.Flags) // as seeded, for the next subtests
	})

	t.Run("IMAPToMaildirToIMAP", func(t *testing.T) {
		sum := copyJSON(t, "copy", imapURL(srv, srcUser), "maildir:"+backup, "--dedup", "none")
		if sum.Copied != len(fx) {
			t.Fatalf("backup copied %d of %d: %+v", sum.Copied, len(fx), sum.Errors)
		}
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
			New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
				s, err := srcmaildir.Open(backup, srcmaildir.LayoutMaildirPP)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		})
		sourcetest.Run(t, sourcetest.Opt{
			Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
			New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
				sum := copyJSON(t, "copy", "maildir:"+backup, imapURL(srv, restoreUser), "--dedup", "none")
				if sum.Copied != len(fx) {
					t.Fatalf("restore copied %d of %d: %+v", sum.Copied, len(fx), sum.Errors)
				}
				return imapStore(t, srv, restoreUser)
			},
		})
		// The default dedup finds everything present after a lost checkpoint.
		sum = copyJSON(t, "copy", "maildir:"+backup, imapURL(srv, restoreUser), "--checkpoint", filepath.Join(dir, "fresh.ckpt"))
		if sum.Copied != 0 {
			t.Fatalf("restore again without checkpoint copied %d", sum.Copied)
		}
	})
}

func TestIMAPConnectionSecurity(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	dst := "maildir:" + t.TempDir()
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	tests := []struct {
		name, url string
		code      int
		stderr    string
	}{
		{"self-signed refused without its CA", fmt.Sprintf("imaps://%s@127.0.0.1:%d", user, srv.IMAPSPort), exitFailed, "certificate"},
		{"STARTTLS with the CA", fmt.Sprintf("imap://%s@127.0.0.1:%d?ca_file=%s", user, srv.IMAPPort, srv.CAFile), exitOK, ""},
		{"STARTTLS without the CA", fmt.Sprintf("imap://%s@127.0.0.1:%d", user, srv.IMAPPort), exitFailed, "certificate"},
		{"plaintext asked for", fmt.Sprintf("imap://%s@127.0.0.1:%d?tls=none", user, srv.IMAPPort), exitOK, "without TLS"},
		{"skip verify, loudly", fmt.Sprintf("imaps://%s@127.0.0.1:%d?insecure_skip_verify=true", user, srv.IMAPSPort), exitOK, "certificate checks are OFF"},
		{"implicit TLS on the plain port", fmt.Sprintf("imaps://%s@127.0.0.1:%d?ca_file=%s", user, srv.IMAPPort, srv.CAFile), exitFailed, "TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cli(t, "copy", tt.url, dst)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
			if strings.Contains(stderr, dovecottest.Password) {
				t.Fatal("the password appears in the output")
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv("MAILFERRY_SRC_PASSWORD", "not-the-password-xyzzy")
		code, _, stderr := cli(t, "copy", imapURL(srv, user), dst)
		if code != exitFailed || !strings.Contains(stderr, "AUTHENTICATIONFAILED") || strings.Contains(stderr, "xyzzy") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("password in the URL is used, with a warning, and never shown", func(t *testing.T) {
		t.Setenv("MAILFERRY_SRC_PASSWORD", "")
		os.Unsetenv("MAILFERRY_SRC_PASSWORD") // t.Setenv restores it afterwards
		u := fmt.Sprintf("imaps://%s@127.0.0.1:%d?ca_file=%s", url.UserPassword(user, dovecottest.Password), srv.IMAPSPort, srv.CAFile)
		code, out, stderr := cli(t, "copy", u, dst, "--json")
		if code != exitOK || !strings.Contains(stderr, "password taken from the URL") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if strings.Contains(stderr+out, dovecottest.Password) || strings.Contains(stderr+out, "Wörd") {
			t.Fatalf("the password appears in the output: %s %s", stderr, out)
		}
	})
}

func fewFixtures(folder string, n int) []sourcetest.Fixture {
	var fx []sourcetest.Fixture
	for i := range n {
		fx = append(fx, sourcetest.Fixture{Name: fmt.Sprint(i), Folder: folder,
			Content: []byte(fmt.Sprintf("Message-ID: <%d@uv.test>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)),
			Flags:   []string{`\Seen`}, Date: time.Date(2021, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	return fx
}

// When a folder's UIDVALIDITY changes (here: deleted and made again with the
// same mail), every message has a new ID; the folder is matched against the
// destination again, and nothing is copied twice.
func TestIMAPUIDValidityChange(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	fx := fewFixtures("Box", 20)
	src := imapStore(t, srv, user)
	sinktest.Put(t, src, fx)
	dst := "maildir:" + t.TempDir()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if sum := copyJSON(t, "copy", imapURL(srv, user), dst, "--checkpoint", ckpt); sum.Copied != 20 {
		t.Fatalf("first run copied %d", sum.Copied)
	}
	cn, err := src.Pool.Get(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cn.Do(func() error { return cn.Client().Delete("Box").Wait() }); err != nil {
		t.Fatal(err)
	}
	src.Pool.Put(cn, false)
	src.Close()
	sinktest.Put(t, imapStore(t, srv, user), fx)
	sum := copyJSON(t, "copy", imapURL(srv, user), dst, "--checkpoint", ckpt)
	if sum.Copied != 0 || sum.AlreadyPresent != 20 {
		t.Fatalf("after the UIDVALIDITY change: %d copied, %d present", sum.Copied, sum.AlreadyPresent)
	}
}

// A destination without UIDPLUS: the copies have no IDs we know, and a run
// that lost its checkpoint still copies nothing twice.
func TestIMAPWithoutUIDPLUS(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{IMAPCapability: "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE SPECIAL-USE"})
	user := srv.NewUser(t)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	srcDir := t.TempDir()
	s, err := sinkmaildirNew(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	sinktest.Put(t, s, fewFixtures("INBOX", 15))
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if sum := copyJSON(t, "copy", "maildir:"+srcDir, imapURL(srv, user), "--checkpoint", ckpt); sum.Copied != 15 {
		t.Fatalf("copied %d", sum.Copied)
	}
	os.Remove(ckpt)
	if sum := copyJSON(t, "copy", "maildir:"+srcDir, imapURL(srv, user), "--checkpoint", ckpt); sum.Copied != 0 || sum.AlreadyPresent != 15 {
		t.Fatalf("without the checkpoint: %d copied, %d present", sum.Copied, sum.AlreadyPresent)
	}
	n := 0
	imapStore(t, srv, user).List(context.Background(), "INBOX", func(source.Message) error { n++; return nil })
	if n != 15 {
		t.Fatalf("the server holds %d messages, want 15", n)
	}
}

func sinkmaildirNew(dir string) (*sinkmaildir.Sink, error) {
	return sinkmaildir.New(dir, srcmaildir.LayoutMaildirPP, nil)
}

// verify reads both ends and changes nothing: unseen mail stays unseen.
func TestVerifyIMAPReadOnly(t *testing.T) {
	srv, src, dst := migrationPair(t)
	fx := fewFixtures("Box", 8)
	for i := range fx {
		fx[i].Flags = nil // unseen
	}
	sinktest.Put(t, imapStore(t, srv, src), fx)
	copyJSON(t, "copy", imapURL(srv, src), imapURL(srv, dst))
	code, out, stderr := cli(t, "verify", imapURL(srv, src), imapURL(srv, dst), "--deep", "--json")
	var sum plan.VerifySummary
	json.Unmarshal([]byte(out), &sum)
	if code != exitOK || sum.Present != 8 {
		t.Fatalf("verify: exit %d %s %s", code, out, stderr)
	}
	for _, user := range []string{src, dst} {
		imapStore(t, srv, user).List(context.Background(), "Box", func(m source.Message) error {
			if len(m.Flags) != 0 {
				t.Errorf("%s: verify changed flags: %q", user, m.Flags)
			}
			return nil
		})
	}
	// One message gone at the destination: exit 3, named.
	d := imapStore(t, srv, dst)
	var victim source.Message
	d.List(context.Background(), "Box", func(m source.Message) error { victim = m; return nil })
	cn, _ := d.Pool.Get(context.Background(), "")
	cn.Select("Box", false)
	_, uid, _ := srcimap.ParseID(victim.ID)
	cn.Do(func() error {
		cn.Client().Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		return cn.Client().UIDExpunge(imap.UIDSetNum(uid)).Close()
	})
	d.Pool.Put(cn, false)
	code, _, stderr = cli(t, "verify", imapURL(srv, src), imapURL(srv, dst))
	if code != exitIncomplete || !strings.Contains(stderr, "missing at the destination") {
		t.Fatalf("after losing one: exit %d, %q", code, stderr)
	}
}

// Through proxies that drop connections after random byte counts and stall
// others past the timeout, on both sides, a migration still finishes with
// every message exactly once, by retrying with backoff and looking at the
// destination before each retry.
func TestLossyNetwork(t *testing.T) {
	srv, src, dst := migrationPair(t)
	var fx []sourcetest.Fixture
	for i := range 400 {
		body := strings.Repeat(fmt.Sprintf("line %d of message %d\r\n", i, i), 1+(i*37)%900)
		fx = append(fx, sourcetest.Fixture{Name: fmt.Sprint(i), Folder: []string{"INBOX", "Lists", "Work/2024"}[i%3],
			Content: []byte(fmt.Sprintf("Message-ID: <%d@lossy.test>\r\nSubject: %d\r\n\r\n%s", i, i, body)),
			Flags:   []string{`\Seen`}, Date: time.Date(2022, 1, 1, 0, 0, i, 0, time.UTC)})
	}
	sinktest.Put(t, imapStore(t, srv, src), fx)
	target := dovecottest.Addr(srv.IMAPSPort)
	ps := faultproxy.Start(t, target, &faultproxy.Proxy{Faults: 10, MinBytes: 20 << 10, MaxBytes: 600 << 10, StallEvery: 4})
	pd := faultproxy.Start(t, target, &faultproxy.Proxy{Faults: 10, MinBytes: 20 << 10, MaxBytes: 600 << 10, StallEvery: 5})
	via := func(p *faultproxy.Proxy, user string) string {
		return fmt.Sprintf("imaps://%s@%s?ca_file=%s&timeout=1s", user, p.Addr, srv.CAFile)
	}
	code, out, stderr := cli(t, "copy", via(ps, src), via(pd, dst), "--json", "--quiet")
	var sum plan.Summary
	json.Unmarshal([]byte(out), &sum)
	t.Logf("faults: source %d (%d stalled), destination %d (%d stalled); retries %d", ps.Broken(), ps.Stalled(), pd.Broken(), pd.Stalled(), sum.Retries)
	if code != exitOK {
		t.Fatalf("exit %d: %+v\n%s", code, sum.Errors, stderr)
	}
	if sum.Retries == 0 || ps.Broken()+pd.Broken() < 10 {
		t.Fatalf("the proxies broke %d connections and the run retried %d times: the test did not test much", ps.Broken()+pd.Broken(), sum.Retries)
	}
	code, out, _ = cli(t, "verify", imapURL(srv, src), imapURL(srv, dst), "--deep", "--json")
	var v plan.VerifySummary
	json.Unmarshal([]byte(out), &v)
	if code != exitOK || v.Present != len(fx) || v.Extra != 0 {
		t.Fatalf("verify: exit %d, present %d of %d, extra %d", code, v.Present, len(fx), v.Extra)
	}
}

// The password appears nowhere: not in the log at the most verbose level,
// not in errors, not in the JSON summary, not in the checkpoint. Files
// mailferry creates are 0600 and its directories 0700.
func TestSecretsAndPermissions(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	sinktest.Put(t, imapStore(t, srv, user), fewFixtures("INBOX", 5))
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	t.Setenv("XDG_STATE_HOME", state)
	for _, tt := range []struct {
		name, url, password string
	}{
		{"imap", imapURL(srv, user), dovecottest.Password},
		{"imap, wrong password", imapURL(srv, user), "Wrong-Secret-1234"},
		{"pop3", pop3URL(srv, user), dovecottest.Password},
		{"pop3, wrong password", pop3URL(srv, user), "Wrong-Secret-5678"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MAILFERRY_SRC_PASSWORD", tt.password)
			dst := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			var all strings.Builder
			cmds := [][]string{
				{"copy", tt.url, "maildir:" + dst, "--verbose", "--json"},
				{"plan", tt.url, "maildir:" + dst, "--verbose", "--json"},
				{"verify", tt.url, "maildir:" + dst, "--verbose", "--json"},
			}
			if strings.Contains(tt.name, "wrong") {
				cmds = cmds[:1] // Dovecot's penalty for repeated failures grows; one login path is enough
			}
			for _, args := range cmds {
				_, out, stderr := cli(t, args...)
				all.WriteString(out + stderr)
			}
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				if !fi.IsDir() {
					b, _ := os.ReadFile(p)
					all.Write(b)
				}
				return nil
			})
			for _, secret := range []string{tt.password, "Wörd"} {
				if strings.Contains(all.String(), secret) {
					t.Fatalf("the password shows in the output or in a file")
				}
			}
		})
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		if fi.IsDir() && fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", p, fi.Mode().Perm())
		}
		if !fi.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if ckpts, _ := filepath.Glob(filepath.Join(state, "mailferry", "*.ckpt")); len(ckpts) == 0 {
		t.Fatal("no checkpoint was written where XDG_STATE_HOME says")
	}
}

// Folder names are translated between a Courier-style server ("INBOX."
// prefix, "." separator) and a "/" server, both ways, nested and
// non-ASCII names included.
func TestNamespaceTranslation(t *testing.T) {
	courier := dovecottest.Start(t, dovecottest.Options{Courier: true})
	plain := dovecottest.Start(t, dovecottest.Options{})
	t.Setenv("MAILFERRY_SRC_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_DST_PASSWORD", dovecottest.Password)
	var fx []sourcetest.Fixture
	for i, f := range []string{"INBOX", "Work/2024/Q1", "Entwürfe", "Sent", "A & B"} {
		for _, x := range fewFixtures(f, 3) {
			x.Content = append([]byte(fmt.Sprintf("X-Folder-Test: %d\r\n", i)), x.Content...)
			fx = append(fx, x)
		}
	}
	for _, dir := range []struct {
		name           string
		from, to       *dovecottest.Server
		fromDir, toDir string
	}{
		{"courier to plain", courier, plain, "INBOX.Work.2024.Q1", "Work/2024/Q1"},
		{"plain to courier", plain, courier, "Work/2024/Q1", "INBOX.Work.2024.Q1"},
	} {
		t.Run(dir.name, func(t *testing.T) {
			src, dst := dir.from.NewUser(t), dir.to.NewUser(t)
			sinktest.Put(t, imapStore(t, dir.from, src), fx)
			sourcetest.Run(t, sourcetest.Opt{
				Fixtures: func(*testing.T) []sourcetest.Fixture { return fx },
				New: func(t *testing.T, fx []sourcetest.Fixture) source.Source {
					if sum := copyJSON(t, "copy", imapURL(dir.from, src), imapURL(dir.to, dst)); sum.Copied != len(fx) {
						t.Fatalf("copied %d of %d: %+v", sum.Copied, len(fx), sum.Errors)
					}
					return imapStore(t, dir.to, dst)
				},
			})
			// The server's own names, as another client sees them.
			for _, c := range []struct {
				s    *dovecottest.Server
				user string
				want string
			}{{dir.from, src, dir.fromDir}, {dir.to, dst, dir.toDir}} {
				cl, err := imapclientDial(c.s, c.user)
				if err != nil {
					t.Fatal(err)
				}
				l, _ := cl.List("", "*", nil).Collect()
				cl.Close()
				found := false
				for _, m := range l {
					found = found || m.Mailbox == c.want
				}
				if !found {
					t.Errorf("%s has no mailbox %q", c.user, c.want)
				}
			}
		})
	}
}

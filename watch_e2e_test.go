package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// --watch keeps a Maildir backup seconds behind a Dovecot account: a
// message appended to INBOX, a new folder with a message, a burst of
// three, and a message after the server kicked every connection each reach
// the backup, durably, within 5 s, once each; no-op
// passes print nothing; the metrics file is refreshed; a kill -9 and a
// restart lose and double nothing (a message delivered while it was down
// arrives); SIGTERM ends it with exit 0 within seconds.
func TestWatchFollowsTheSource(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary for some seconds; skipped with -short")
	}
	srv, src, _ := migrationPair(t)
	bin := binary(t)
	dir := t.TempDir()
	dst, metrics := filepath.Join(dir, "backup"), filepath.Join(dir, "watch.prom")
	args := []string{"copy", imapURL(srv, src), "maildir:" + dst, "--watch", "--watch-interval", "1",
		"--checkpoint", filepath.Join(dir, "ckpt"), "--metrics-file", metrics}
	var stderr bytes.Buffer
	start := func() *exec.Cmd { return startWatch(t, bin, &stderr, args...) }
	store := imapStore(t, srv, src)
	n := 0
	deliver := func(folder string) {
		n++
		body := fmt.Sprintf("Message-ID: <watch-%d@example.com>\r\nSubject: %d\r\n\r\nbody\r\n", n, n)
		m := source.Message{Folder: folder, Size: int64(len(body)), Date: time.Now()}
		if _, err := store.Put(context.Background(), folder, m, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	arrives := func(what string, want int) {
		t.Helper()
		begin := time.Now()
		for sourcetest.CountMaildir(dst) < want {
			if time.Since(begin) > 5*time.Second {
				t.Fatalf("%s: %d of %d messages at the backup after 5 s\n%s", what, sourcetest.CountMaildir(dst), want, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: at the backup in %v", what, time.Since(begin).Round(time.Millisecond))
	}

	cmd := start()
	deliver("INBOX")
	arrives("a message in INBOX", 1)
	deliver("Projects")
	arrives("a new folder with a message", 2)
	deliver("INBOX")
	deliver("Projects")
	deliver("INBOX")
	arrives("a burst of three", 5)
	time.Sleep(1500 * time.Millisecond) // passes that find nothing
	if got := sourcetest.CountMaildir(dst); got != 5 {
		t.Fatalf("backup holds %d messages, want 5", got)
	}
	if lines := strings.Count(stderr.String(), "copied"); lines > 4 {
		t.Errorf("%d verdict lines for 4 passes that copied something: no-op passes should be silent\n%s", lines, stderr.String())
	}
	if b, err := os.ReadFile(metrics); err != nil || !strings.Contains(string(b), "mailferry_last_run_timestamp_seconds") {
		t.Errorf("metrics file: %v\n%s", err, b)
	}

	// Every connection kicked by the server: the next pass connects anew.
	doveadm(t, srv, "kick", src)
	store = imapStore(t, srv, src) // the test's own connections were kicked too
	deliver("INBOX")
	arrives("a message after the server kicked every connection", 6)

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deliver("INBOX")
	cmd = start()
	arrives("a message delivered while it was down", 7)

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SIGTERM: %v, want exit 0\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM: still running after 5 s")
	}
	if got := sourcetest.CountMaildir(dst); got != 7 {
		t.Fatalf("backup holds %d messages, want 7 (each once)", got)
	}
	if code, _, out := cli(t, "verify", imapURL(srv, src), "maildir:"+dst); code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
}

// With NOTIFY (Dovecot offers it), a message delivered to INBOX
// (appended, or every fifth as a local delivery agent writes it) or to
// another folder, new or not, reaches the backup without waiting for the
// next pass: with passes an hour apart, each of 20
// deliveries is at the backup within 5 s, and the watcher survives the
// server kicking its connection and, later, a restart of the server that
// refuses connections for 2 s. The median and worst latencies are logged.
func TestWatchIdleWakes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary for some seconds; skipped with -short")
	}
	srv, src, _ := migrationPair(t)
	bin := binary(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup")
	var stderr bytes.Buffer
	startWatch(t, bin, &stderr, "copy", imapURL(srv, src), "maildir:"+dst, "--watch", "--watch-interval", "3600",
		"--checkpoint", filepath.Join(dir, "ckpt"))
	store := imapStore(t, srv, src)
	for !isDir(filepath.Join(dst, "cur")) {
		time.Sleep(20 * time.Millisecond) // the first pass made the backup
	}
	time.Sleep(300 * time.Millisecond) // and the watcher is idling
	var lat []time.Duration
	for i := 1; i <= 20; i++ {
		switch i {
		case 8:
			doveadm(t, srv, "kick", src)
			store = imapStore(t, srv, src)
		case 15:
			srv.Restart(t, 2*time.Second) // every connection dropped, none taken for 2 s
			store = imapStore(t, srv, src)
		}
		body := fmt.Sprintf("Message-ID: <idle-%d@example.com>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
		begin := time.Now()
		folder := "INBOX"
		if i%7 == 0 {
			folder = "Projects" // made by the first: NOTIFY tells of both
		}
		if i%5 == 0 {
			// As a local delivery agent delivers: a file in new/, which
			// Dovecot notices and tells the watcher about.
			srv.Deliver(t, src, [][]byte{[]byte(body)}, nil)
		} else if _, err := store.Put(context.Background(), folder, source.Message{Folder: folder, Size: int64(len(body)), Date: begin}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		for sourcetest.CountMaildir(dst) < i {
			if time.Since(begin) > 5*time.Second {
				t.Fatalf("delivery %d: not at the backup after 5 s\n%s", i, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(begin))
	}
	slices.Sort(lat)
	t.Logf("delivery to durable copy, 20 deliveries through NOTIFY and IDLE: median %v, worst %v", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// startWatch starts the binary with args and the source's password, its
// stderr to stderr; it is killed when the test ends.
func startWatch(t *testing.T, bin string, stderr *bytes.Buffer, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MAILFERRY_SRC_PASSWORD="+dovecottest.Password)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// A watch under steady deliveries keeps its memory flat, and one killed
// with SIGKILL at random instants while mail arrives, then started again,
// leaves every message at the backup exactly once. MAILFERRY_SOAK sets
// the soak's length (default 40s; a day's soak is the same test, longer).
func TestWatchSoakAndKills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary for a minute; skipped with -short")
	}
	soak := 40 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MAILFERRY_SOAK")); err == nil {
		soak = d
	}
	srv, src, _ := migrationPair(t)
	bin := binary(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup")
	var stderr bytes.Buffer
	start := func() *exec.Cmd {
		return startWatch(t, bin, &stderr, "copy", imapURL(srv, src), "maildir:"+dst, "--watch", "--watch-interval", "2",
			"--checkpoint", filepath.Join(dir, "ckpt"), "--quiet")
	}
	store := imapStore(t, srv, src)
	n := 0
	deliver := func() {
		n++
		folder := []string{"INBOX", "INBOX", "Lists"}[n%3]
		body := fmt.Sprintf("Message-ID: <soak-%d@example.com>\r\nSubject: %d\r\n\r\n%s\r\n", n, n, strings.Repeat("a soak test line\r\n", n%50))
		if _, err := store.Put(context.Background(), folder, source.Message{Folder: folder, Size: int64(len(body)), Date: time.Now()}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp := func(what string) {
		t.Helper()
		begin := time.Now()
		for sourcetest.CountMaildir(dst) < n {
			if time.Since(begin) > 15*time.Second {
				t.Fatalf("%s: %d of %d messages at the backup after 15 s\n%s", what, sourcetest.CountMaildir(dst), n, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	cmd := start()
	var rss []int
	began := time.Now()
	for time.Since(began) < soak {
		deliver()
		time.Sleep(100 * time.Millisecond)
		if el := time.Since(began); len(rss) == 0 && el > soak/4 || len(rss) == 1 && el > soak-time.Second {
			caughtUp("soak")
			rss = append(rss, rssKB(t, cmd.Process.Pid))
		}
	}
	caughtUp("soak")
	t.Logf("soak: %d deliveries in %v; RSS %d KB after a quarter, %d KB at the end", n, soak, rss[0], rss[len(rss)-1])
	if grown := rss[len(rss)-1] - rss[0]; grown > 20<<10 {
		t.Errorf("RSS grew by %d KB over the soak", grown)
	}

	for i := range 6 {
		deliver()
		deliver()
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		deliver()
		cmd = start()
		if i%2 == 1 {
			caughtUp(fmt.Sprintf("after kill %d", i+1))
		}
	}
	caughtUp("after the kills")
	time.Sleep(3 * time.Second) // a pass or two more: nothing doubled
	if got := sourcetest.CountMaildir(dst); got != n {
		t.Fatalf("backup holds %d messages, want %d, each once", got, n)
	}
	if code, _, out := cli(t, "verify", imapURL(srv, src), "maildir:"+dst); code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
}

// rssKB is a process's resident set, as the kernel counts it.
func rssKB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// TestWatchLatency times continuous backup: mailferry --watch from a
// Dovecot account to a Maildir, passes an hour apart so that only IDLE
// can bring a message over, and MAILFERRY_BENCH_WATCH_N deliveries
// (default 100), one at a time, each timed from the APPEND's answer to
// the file at the backup. It logs the median and the worst, and fails
// only if a message does not arrive within 5 s or arrives twice.
func TestWatchLatency(t *testing.T) {
	if envInt("MAILFERRY_BENCH_N", 0) == 0 || !wantPath("watch") {
		t.Skip("a benchmark: run bench/run.sh, or set MAILFERRY_BENCH_N")
	}
	n := envInt("MAILFERRY_BENCH_WATCH_N", 100)
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	work := t.TempDir()
	bin := buildBinary(t, work)
	backup := filepath.Join(work, "backup")
	cmd := exec.Command(bin, "copy", fmt.Sprintf("imap://%s@127.0.0.1:%d?tls=none", user, srv.IMAPPort), "maildir:"+backup,
		"--watch", "--watch-interval", "3600", "--checkpoint", filepath.Join(work, "ckpt"), "--quiet")
	cmd.Env = append(os.Environ(), "MAILFERRY_SRC_PASSWORD="+dovecottest.Password)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for begin := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(filepath.Join(backup, "cur")); err == nil && fi.IsDir() {
			break
		}
		if time.Since(begin) > 10*time.Second {
			t.Fatalf("the first pass made no backup\n%s", stderr.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // the watcher is idling
	c := imapClient(t, srv, user)
	defer c.Close()
	var lat []time.Duration
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("Message-ID: <watch-%d@example.com>\r\nSubject: %d\r\n\r\n%s", i, i, strings.Repeat("a line of a delivered message\r\n", 100))
		cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{})
		cmd.Write([]byte(body))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		for sourcetest.CountMaildir(backup) < i {
			if time.Since(begin) > 5*time.Second {
				t.Fatalf("delivery %d: not at the backup after 5 s\n%s", i, stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(begin))
	}
	if got := sourcetest.CountMaildir(backup); got != n {
		t.Fatalf("the backup holds %d messages, want %d", got, n)
	}
	slices.Sort(lat)
	t.Logf("| mailferry --watch | IMAP→Maildir, delivery to durable copy (IDLE) | %d deliveries | median %.0f ms | worst %.0f ms |",
		n, float64(lat[n/2].Microseconds())/1000, float64(lat[n-1].Microseconds())/1000)
}

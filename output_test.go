package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailferry/mailferry/plan"
)

// openPTY opens a pseudo-terminal pair: what is written to the returned
// terminal end can be read from the controlling end.
func openPTY(t *testing.T) (control, tty *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(control.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close(); control.Close() })
	return control, tty
}

var verdictLine = regexp.MustCompile(`^[\d,]+ copied, [\d,]+ duplicates skipped, .*[\d,]+ failed \([\d.]+ [KMG]?i?B, [\dhms.]+\)$`)

// On a terminal a progress bar is drawn on stderr, with the rate; off a
// terminal (cron) stderr holds the verdict line and nothing else, and no
// carriage return.
func TestProgressOnlyOnATerminal(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	makeMaildir(src, 1500)

	t.Run("terminal", func(t *testing.T) {
		control, tty := openPTY(t)
		got := make(chan string)
		go func() {
			b, _ := io.ReadAll(control) // ends when the tty side closes
			got <- string(b)
		}()
		var stdout bytes.Buffer
		code := run(context.Background(), []string{"copy", "maildir:" + src, "maildir:" + filepath.Join(t.TempDir(), "d"), "--checkpoint", filepath.Join(t.TempDir(), "c")}, &stdout, tty)
		tty.Close()
		out := <-got
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, out)
		}
		if !strings.Contains(out, "\r") || !strings.Contains(out, " msg/s)") || !regexp.MustCompile(`\(\d+/\d+, `).MatchString(out) {
			t.Fatalf("no progress bar on the terminal: %q", out)
		}
		if !strings.Contains(out, "1,500 copied") {
			t.Fatalf("no verdict after the bar: %q", out)
		}
		if stdout.Len() != 0 {
			t.Fatalf("the bar went to stdout: %q", stdout.String())
		}
	})

	t.Run("cron", func(t *testing.T) {
		code, stdout, stderr := cli(t, "copy", "maildir:"+src, "maildir:"+filepath.Join(t.TempDir(), "d"), "--checkpoint", filepath.Join(t.TempDir(), "c"))
		if code != exitOK || stdout != "" {
			t.Fatalf("exit %d, stdout %q", code, stdout)
		}
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if len(lines) != 1 || !verdictLine.MatchString(lines[0]) || strings.Contains(stderr, "\r") || !strings.HasPrefix(stderr, "1,500 copied") {
			t.Fatalf("cron output is not one verdict line: %q", stderr)
		}
	})

	t.Run("quiet", func(t *testing.T) {
		code, stdout, stderr := cli(t, "copy", "maildir:"+src, "maildir:"+filepath.Join(t.TempDir(), "d"), "--checkpoint", filepath.Join(t.TempDir(), "c"), "--quiet")
		if code != exitOK || stdout != "" || stderr != "" {
			t.Fatalf("--quiet: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// --log-format json: every log line is a JSON object.
func TestJSONLogs(t *testing.T) {
	code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+filepath.Join(t.TempDir(), "d"), "--checkpoint", filepath.Join(t.TempDir(), "c"), "--verbose", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		line := sc.Text()
		if verdictLine.MatchString(line) {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil || v["level"] == nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("%d JSON log lines; want one per copied message at least:\n%s", n, stderr)
	}
}

// --summary-file and --metrics-file are written (0600, whole), and the
// metrics are in the Prometheus text format with the run's figures.
func TestSummaryAndMetricsFiles(t *testing.T) {
	dir := t.TempDir()
	summary, metrics := filepath.Join(dir, "summary.json"), filepath.Join(dir, "mailferry.prom")
	code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+filepath.Join(dir, "d"), "--checkpoint", filepath.Join(dir, "c"), "--summary-file", summary, "--metrics-file", metrics)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum struct {
		Copied int `json:"copied"`
	}
	b, err := os.ReadFile(summary)
	if err != nil || json.Unmarshal(b, &sum) != nil || sum.Copied == 0 {
		t.Fatalf("summary file: %v %q", err, b)
	}
	m, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	sample := regexp.MustCompile(`(?m)^([a-z_]+)(\{job="[^"]*"\})? ([0-9.e+-]+)$`)
	for _, line := range strings.Split(strings.TrimSpace(string(m)), "\n") {
		if !strings.HasPrefix(line, "# HELP ") && !strings.HasPrefix(line, "# TYPE ") && !sample.MatchString(line) {
			t.Errorf("not Prometheus text format: %q", line)
		}
	}
	if want := `mailferry_messages_copied{job="copy"} ` + strconv.Itoa(sum.Copied); !strings.Contains(string(m), want) || !strings.Contains(string(m), `mailferry_last_run_exit_code{job="copy"} 0`) {
		t.Errorf("metrics lack %q or the exit code:\n%s", want, m)
	}
	for _, p := range []string{summary, metrics} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
	}
	// A second run replaces the files.
	time.Sleep(time.Second)
	cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+filepath.Join(dir, "d"), "--checkpoint", filepath.Join(dir, "c"), "--metrics-file", metrics)
	if m2, _ := os.ReadFile(metrics); !strings.Contains(string(m2), `mailferry_messages_copied{job="copy"} 0`) {
		t.Errorf("second run's metrics:\n%s", m2)
	}
}

// TestMetricsPerJob: in a run of two jobs, one failing before it copies
// anything, the metrics name the job that failed, and a metrics file that
// cannot be written is refused before the run.
func TestMetricsPerJob(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "m.prom")
	cfg := fmt.Sprintf("jobs:\n  - name: good\n    source: maildir:%s\n    destination: maildir:%s/good\n  - name: bad\n    source: maildir:%s/missing\n    destination: maildir:%s/bad\n", sampleMaildir(t), dir, dir, dir)
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(cfg), 0o600)
	code, out, stderr := cli(t, "run", "--json", "--metrics-file", metrics, p)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	m, _ := os.ReadFile(metrics)
	for _, want := range []string{`mailferry_last_run_exit_code{job="good"} 0`, `mailferry_last_run_exit_code{job="bad"} 1`, `mailferry_messages_copied{job="bad"} 0`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	if !strings.Contains(stderr, "good: 7 copied") || !strings.HasPrefix(out, "{") {
		t.Errorf("with --json the verdict stays on stderr and the JSON on stdout:\nstdout %.80q\nstderr %s", out, stderr)
	}
	code, _, stderr = cli(t, "run", "--metrics-file", filepath.Join(dir, "no", "m.prom"), p)
	if code != exitUsage || !strings.Contains(stderr, "metrics_file (--metrics-file): the directory of") {
		t.Errorf("metrics file in a missing directory: exit %d, %s", code, stderr)
	}
}

// Folder rules and filters from the command line do what plan shows.
func TestFolderFlags(t *testing.T) {
	dir := t.TempDir()
	dst := "maildir:" + filepath.Join(dir, "d")
	code, planOut, stderr := cli(t, "plan", "maildir:examples/sample-maildir", dst, "--exclude", "INBOX", "--prefix", "Restored/2026-11-26", "--checkpoint", filepath.Join(dir, "c"))
	if code != exitOK || strings.Contains(planOut, "\nINBOX ") || !strings.Contains(planOut, "Restored/2026-11-26/") {
		t.Fatalf("plan: exit %d\n%s%s", code, planOut, stderr)
	}
	sum := copyJSON(t, "copy", "maildir:examples/sample-maildir", dst, "--exclude", "INBOX", "--prefix", "Restored/2026-11-26", "--checkpoint", filepath.Join(dir, "c"))
	for _, f := range sum.Folders {
		if f.Name == "INBOX" || !strings.HasPrefix(f.Destination, "Restored/2026-11-26/") || !strings.Contains(planOut, f.Destination) {
			t.Errorf("folder %q went to %q; plan said:\n%s", f.Name, f.Destination, planOut)
		}
	}
	if code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", dst, "--max-size", "lots"); code != exitUsage || !strings.Contains(stderr, "max_size") {
		t.Fatalf("bad --max-size: exit %d, %q", code, stderr)
	}
}

// A day's byte budget ends the run with exit code 5 and a warning, not an
// error; the next run that day copies nothing more.
func TestByteBudgetExit(t *testing.T) {
	dir := t.TempDir()
	args := []string{"copy", "maildir:examples/sample-maildir", "maildir:" + filepath.Join(dir, "d"), "--checkpoint", filepath.Join(dir, "c"), "--daily-byte-budget", "1k", "--workers", "1"}
	code, _, stderr := cli(t, args...)
	if code != exitBudget || strings.Contains(stderr, "error:") || !strings.Contains(stderr, "byte budget") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if code, _, stderr := cli(t, append(args, "--json")...); code != exitBudget || !strings.Contains(stderr, "byte budget") {
		t.Fatalf("second run: exit %d, %q", code, stderr)
	}
	if code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+filepath.Join(dir, "d"), "--daily-byte-budget", "lots"); code != exitUsage || !strings.Contains(stderr, "daily_byte_budget") {
		t.Fatalf("bad budget: exit %d, %q", code, stderr)
	}
}

// Text from a server or a file reaches a terminal escaped: no escape
// sequence, control character or bidi override gets through, and plain
// text (accents, quotes, tabs aside) is left as it is.
func TestTermSafe(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Entwürfe", "Entwürfe"},
		{`folder "x": NO [TRYCREATE]`, `folder "x": NO [TRYCREATE]`},
		{"\x1b[2Jgone", `\x1b[2Jgone`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"a\rb\nc", `a\x0db\x0ac`},
		{"\u202Egnp.exe", `\u202egnp.exe`},
		{"bad \xff byte", `bad \xff byte`},
		{"\u009b31m", `\u009b31m`},
	} {
		if got := termSafe(tt.in); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := errorText(errors.New(strings.Repeat("x", 5000)))
	if len(long) > maxErrorText+50 || !strings.Contains(long, "4000 bytes more") {
		t.Errorf("a 5000-byte error is printed as %d bytes", len(long))
	}
}

// TestBarCounts: with a count up front the bar's end is the whole run and
// does not move; without one it grows with what is found, one ahead.
func TestBarCounts(t *testing.T) {
	tests := []struct {
		name                              string
		expect, settled, queued, finished int
		wantDone, wantTotal               int64
	}{
		{"nothing yet (progressbar takes 0 for no bar)", 0, 0, 0, 0, 0, 1},
		{"counted, at the start", 326, 0, 0, 0, 0, 326},
		{"counted, mid-run", 326, 100, 50, 20, 120, 326},
		{"counted, all done", 326, 200, 126, 126, 326, 326},
		{"not counted", 0, 10, 5, 2, 12, 16},
		{"count too low (mail arrived)", 10, 10, 5, 5, 15, 16},
	}
	for _, tt := range tests {
		b := &barProgress{}
		b.Expect(tt.expect)
		b.Settled(tt.settled)
		for range tt.queued {
			b.Queued(1)
		}
		for range tt.finished {
			b.Finished(1)
		}
		if done, total := b.counts(); done != tt.wantDone || total != tt.wantTotal {
			t.Errorf("%s: %d/%d, want %d/%d", tt.name, done, total, tt.wantDone, tt.wantTotal)
		}
	}
}

// The time of a job's last success survives the runs that fail after it:
// the lag an alert measures grows until a run succeeds again.
func TestLastSuccessCarriedOver(t *testing.T) {
	t0, t1 := time.Unix(1_800_000_000, 0), time.Unix(1_800_000_600, 0)
	first := metricsText([]namedSummary{{"a", &plan.Summary{}, exitOK}, {"b", &plan.Summary{}, exitFailed}}, t0, nil)
	second := metricsText([]namedSummary{{"a", &plan.Summary{}, exitIncomplete}, {"b", &plan.Summary{}, exitOK}}, t1, first)
	for _, tt := range []struct {
		metrics []byte
		want    map[string]int64
	}{
		{first, map[string]int64{"a": t0.Unix()}},
		{second, map[string]int64{"a": t0.Unix(), "b": t1.Unix()}},
	} {
		if got := lastSuccess(tt.metrics); !maps.Equal(got, tt.want) {
			t.Errorf("last successes %v, want %v\n%s", got, tt.want, tt.metrics)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mailferry/mailferry/plan"
)

// isTerminal reports whether w is a terminal. Only the renderer asks: the
// engine reports progress through plan.Progress and never knows.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newLogger logs to w at the level the flags ask for, as text or JSON.
// Times are left out of text lines: cron and journald stamp lines
// themselves.
func newLogger(c *RunSettings, w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if c.Quiet {
		level = slog.LevelError
	}
	if c.Verbose {
		level = slog.LevelDebug
	}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

// barProgress draws a progress bar on a terminal. One goroutine owns the
// bar: the engine's calls only bump counters (they must not block), and
// log lines are handed to the owner, which clears the bar, prints the
// line, and draws the bar again on its next tick, so logs appear above the
// bar without breaking it. Redraws are at most every 200 ms, and the bar
// writes through a wrapper, so progressbar never fsyncs the terminal.
type barProgress struct {
	queued, finished       atomic.Int64
	expected, settled      atomic.Int64 // messages in all; decided without a copy
	queuedBytes, doneBytes atomic.Int64
	folder                 atomic.Value // string
	listing                atomic.Bool
	logs                   chan logLine
	stop, stopped          chan struct{}
	stopOnce               sync.Once
	out                    io.Writer
	bar                    *progressbar.ProgressBar
}

type logLine struct {
	p    []byte
	done chan struct{}
}

// plainWriter hides the *os.File from progressbar, which would call Sync
// (an fsync) after every redraw.
type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

func newBarProgress(out io.Writer, name string) *barProgress {
	b := &barProgress{logs: make(chan logLine), stop: make(chan struct{}), stopped: make(chan struct{}), out: plainWriter{out}}
	b.folder.Store("starting")
	b.bar = progressbar.NewOptions64(1,
		progressbar.OptionSetWriter(b.out),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0), // the owner's ticker is the throttle
		progressbar.OptionUseANSICodes(true),
	)
	go b.own(name)
	return b
}

func (b *barProgress) Listing(folder string) { b.folder.Store(folder); b.listing.Store(true) }
func (b *barProgress) Queued(size int64) {
	b.listing.Store(false)
	b.queued.Add(1)
	b.queuedBytes.Add(size)
}
func (b *barProgress) Finished(size int64) { b.finished.Add(1); b.doneBytes.Add(size) }
func (b *barProgress) Expect(n int)        { b.expected.Store(int64(n)) }
func (b *barProgress) Settled(n int)       { b.settled.Add(int64(n)) }

// counts are the bar's position and end: every message looked at, of all
// the source holds when it could count them up front (else of those found
// so far, plus one, so the bar does not end before the run does).
func (b *barProgress) counts() (done, total int64) {
	done = b.settled.Load() + b.finished.Load()
	seen := b.settled.Load() + b.queued.Load()
	total = b.expected.Load()
	if total < seen || total == 0 {
		total = seen + 1 // never 0: progressbar takes a max of 0 for no bar at all
	}
	return done, max(total, done)
}

func (b *barProgress) own(name string) {
	defer close(b.stopped)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	b.draw(name) // at once, so even a short run shows where it is
	for {
		select {
		case l := <-b.logs:
			b.bar.Clear()
			b.out.Write(l.p)
			close(l.done)
		case <-tick.C:
			b.draw(name)
		case <-b.stop:
			b.bar.Clear()
			return
		}
	}
}

func (b *barProgress) draw(name string) {
	folder := b.folder.Load().(string)
	desc := folder
	if b.listing.Load() {
		desc = "listing " + folder
	}
	if name != "" {
		desc = name + ": " + desc
	}
	desc += fmt.Sprintf(" (%s of %s)", humanBytes(b.doneBytes.Load()), humanBytes(b.queuedBytes.Load()))
	b.bar.Describe(desc)
	done, total := b.counts()
	b.bar.ChangeMax64(total)
	b.bar.Set64(done)
}

// Write prints a log line above the bar.
func (b *barProgress) Write(p []byte) (int, error) {
	l := logLine{p: bytes.Clone(p), done: make(chan struct{})}
	select {
	case b.logs <- l:
		<-l.done
	case <-b.stopped:
		return b.out.Write(p)
	}
	return len(p), nil
}

// Close removes the bar; what follows is printed as usual.
func (b *barProgress) Close() {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.stopped
}

// progressFor picks the renderer: a bar when stderr is a terminal (or
// --progress=always), nothing otherwise (cron, pipes, CI), and never with
// --quiet or --json.
func progressFor(c *RunSettings, stderr io.Writer) bool {
	switch c.Progress {
	case "always":
		return true
	case "never":
		return false
	}
	return !c.Quiet && !c.JSON && isTerminal(stderr)
}

// commas writes n with thousands separators: 4,212.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// verdict is the one line a cron job prints:
// "4,212 copied, 37 duplicates skipped, 0 failed (1.2 GiB, 3m10s)".
func verdict(s *plan.Summary) string {
	parts := []string{commas(s.Copied) + " copied", commas(s.DuplicatesSkipped) + " duplicates skipped"}
	for _, p := range []struct {
		n    int
		what string
	}{{s.Recopied, "of them copied again (lost at the destination)"}, {s.SameMessageID, "with a Message-ID another message has (each kept)"}, {s.AlreadyPresent, "already present"}, {s.FlagsUpdated, "flag updates"}, {s.Filtered, "filtered out"}, {s.Deleted, "deleted at the source"}, {s.MirrorDeleted, "deleted at the destination (mirror)"}} {
		if p.n > 0 {
			parts = append(parts, commas(p.n)+" "+p.what)
		}
	}
	if len(s.Warnings) > 0 {
		parts = append(parts, commas(len(s.Warnings))+" copied with a warning")
	}
	parts = append(parts, commas(s.Failed)+" failed")
	switch {
	case s.FailedFolders == 1:
		parts = append(parts, "1 folder failed")
	case s.FailedFolders > 1:
		parts = append(parts, commas(s.FailedFolders)+" folders failed")
	}
	d := time.Duration(s.ElapsedSeconds * float64(time.Second))
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (%s, %s)", humanBytes(s.Bytes), d)
}

// summaryJSON is what --json prints and --summary-file writes.
func summaryJSON(sums []namedSummary) []byte {
	var v any
	if len(sums) == 1 && sums[0].name == "" {
		v = sums[0].sum
	} else {
		v = totals(sums)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// metricsText renders the figures of each job in the Prometheus text
// exposition format, for node_exporter's textfile collector.
//
// mailferry_last_success_timestamp_seconds is carried over from previous,
// the file as the last run left it, for a job that did not succeed now:
// an alert on time() minus it fires when a mirror falls behind, however
// many runs failed since.
func metricsText(sums []namedSummary, now time.Time, previous []byte) []byte {
	var b bytes.Buffer
	type metric struct {
		name, help, kind string
		value            func(*plan.Summary) float64
	}
	metrics := []metric{
		{"mailferry_messages_copied", "Messages copied by the last run.", "gauge", func(s *plan.Summary) float64 { return float64(s.Copied) }},
		{"mailferry_messages_duplicates_skipped", "Messages the last run skipped as duplicates.", "gauge", func(s *plan.Summary) float64 { return float64(s.DuplicatesSkipped) }},
		{"mailferry_messages_already_present", "Messages the last run found already copied.", "gauge", func(s *plan.Summary) float64 { return float64(s.AlreadyPresent) }},
		{"mailferry_messages_recopied", "Messages the last run copied again because the destination had lost them.", "gauge", func(s *plan.Summary) float64 { return float64(s.Recopied) }},
		{"mailferry_messages_failed", "Messages the last run failed to copy.", "gauge", func(s *plan.Summary) float64 { return float64(s.Failed) }},
		{"mailferry_folders_failed", "Folders the last run failed as a whole (refused, unreadable).", "gauge", func(s *plan.Summary) float64 { return float64(s.FailedFolders) }},
		{"mailferry_messages_filtered", "Messages the last run's filters left out.", "gauge", func(s *plan.Summary) float64 { return float64(s.Filtered) }},
		{"mailferry_messages_deleted_at_source", "Messages the last run deleted at the source (move).", "gauge", func(s *plan.Summary) float64 { return float64(s.Deleted) }},
		{"mailferry_messages_mirror_deleted", "Copies the last run deleted at the destination (mirror).", "gauge", func(s *plan.Summary) float64 { return float64(s.MirrorDeleted) }},
		{"mailferry_flags_updated", "Flag updates the last run carried over.", "gauge", func(s *plan.Summary) float64 { return float64(s.FlagsUpdated) }},
		{"mailferry_bytes_copied", "Bytes the last run copied.", "gauge", func(s *plan.Summary) float64 { return float64(s.Bytes) }},
		{"mailferry_retries", "Transient failures the last run retried.", "gauge", func(s *plan.Summary) float64 { return float64(s.Retries) }},
		{"mailferry_run_duration_seconds", "How long the last run took.", "gauge", func(s *plan.Summary) float64 { return s.ElapsedSeconds }},
	}
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for _, s := range sums {
			sum := s.sum
			if sum == nil {
				sum = &plan.Summary{} // failed before it began: nothing done
			}
			fmt.Fprintf(&b, "%s{job=%q} %s\n", m.name, jobLabel(s.name), strconv.FormatFloat(m.value(sum), 'g', -1, 64))
		}
	}
	// Per job, so that an alert names the account that failed.
	fmt.Fprintf(&b, "# HELP mailferry_last_run_exit_code Exit code of the job's last run (0 done, 1 failed, 2 usage, 3 some messages or folders failed, 4 locked, 5 stopped at the byte budget or the source's daily allowance).\n# TYPE mailferry_last_run_exit_code gauge\n")
	for _, s := range sums {
		fmt.Fprintf(&b, "mailferry_last_run_exit_code{job=%q} %d\n", jobLabel(s.name), s.code)
	}
	fmt.Fprintf(&b, "# HELP mailferry_last_run_timestamp_seconds When the last run ended.\n# TYPE mailferry_last_run_timestamp_seconds gauge\nmailferry_last_run_timestamp_seconds %d\n", now.Unix())
	last := lastSuccess(previous)
	fmt.Fprintf(&b, "# HELP mailferry_last_success_timestamp_seconds When the job's last run that put everything at the destination ended (exit 0).\n# TYPE mailferry_last_success_timestamp_seconds gauge\n")
	for _, s := range sums {
		t, ok := last[jobLabel(s.name)]
		if s.code == exitOK {
			t, ok = now.Unix(), true
		}
		if ok {
			fmt.Fprintf(&b, "mailferry_last_success_timestamp_seconds{job=%q} %d\n", jobLabel(s.name), t)
		}
	}
	return b.Bytes()
}

// lastSuccess reads mailferry_last_success_timestamp_seconds by job from
// a metrics file this function's caller wrote.
func lastSuccess(metrics []byte) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(string(metrics), "\n") {
		rest, ok := strings.CutPrefix(line, `mailferry_last_success_timestamp_seconds{job=`)
		if !ok {
			continue
		}
		label, value, ok := strings.Cut(rest, "} ")
		job, err := strconv.Unquote(label)
		t, perr := strconv.ParseInt(value, 10, 64)
		if ok && err == nil && perr == nil {
			out[job] = t
		}
	}
	return out
}

func jobLabel(name string) string {
	if name == "" {
		return "copy"
	}
	return name
}

// termSafe shows s on a terminal as text: printable characters as they
// are, anything else (escape sequences, other control characters, bidi
// overrides, invalid UTF-8) as a Go escape, so a server's answer, a folder
// name or a file name cannot move the cursor, clear the screen or retitle
// the window. JSON output keeps the exact value.
func termSafe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// maxErrorText bounds an error printed for a person: a server's text
// inside it may be anything up to a whole response.
const maxErrorText = 1000

// errorText is err for a terminal: escaped, and cut to maxErrorText.
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = fmt.Sprintf("%s... (%d bytes more)", strings.ToValidUTF8(s[:maxErrorText], ""), len(s)-maxErrorText)
	}
	return termSafe(s)
}

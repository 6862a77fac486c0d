package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/state"
)

const usage = `mailferry moves and backs up email between IMAP, POP3, Maildir and mbox.

Usage:
  mailferry copy SRC DST [flags]      copy what is new from SRC to DST
  mailferry plan SRC DST [flags]      show what copy would do; change nothing
  mailferry run CONFIG.yaml [flags]   run the jobs of a config file
  mailferry verify SRC DST [--deep]   check every source message is at DST
  mailferry verify CONFIG.yaml        ... for the jobs of a config file
  mailferry oauth login --provider P --client-id ID --out FILE
                                      get an OAuth2 refresh token (device flow)
  mailferry version                   print the version
  mailferry help [COMMAND]            show help

Endpoints:
  maildir:PATH[?layout=fs]            a Maildir tree (Maildir++ by default)
  imaps://USER@HOST[:PORT]            IMAP over TLS (imap:// for STARTTLS)
  pop3s://USER@HOST[:PORT]            POP3 over TLS (pop3:// for STLS); a source only
  mbox:PATH[?folder=NAME]             an mbox file or a Thunderbird tree; a source only

Exit codes: 0 done, 1 run failed, 2 usage or config error,
3 finished but some messages failed (each named in the summary),
4 another run of the job is still going, 5 stopped at the daily byte budget.
`

// commonFlags are the flags copy, plan and run share.
type commonFlags struct {
	json       bool
	checkpoint string
	dedup      string
	workers    int
	quiet      bool
	verbose    bool
	deleteSrc  bool
	deep       bool   // verify only
	job        string // run, verify

	include, exclude, folder stringList
	prefix                   string
	filters                  FilterConfig
	logFormat                string
	summaryFile, metricsFile string
	progress                 string
	mirror, forceDeletes     bool
	limits                   LimitsConfig
	folderParallelism        int

	// run only: many accounts
	parallel           int
	shard              string
	failedFile         string
	jobsFrom           string
	maxHostConnections int
}

// stringList is a flag that may be given more than once.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func newFlagSet(name, help string, stderr io.Writer, withJob bool) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &commonFlags{}
	fs.BoolVar(&c.json, "json", false, "print a JSON summary on stdout at the end")
	fs.StringVar(&c.checkpoint, "checkpoint", "", "checkpoint `FILE` (default: under $XDG_STATE_HOME/mailferry/)")
	fs.StringVar(&c.dedup, "dedup", "", "dedup `MODE`: message-id (default), content or none")
	fs.IntVar(&c.workers, "workers", 0, "messages in flight at once (default 64 into IMAP, 16 into Maildir)")
	fs.IntVar(&c.folderParallelism, "folder-parallelism", 0, "folders copied at once, sharing the workers (default 3 into IMAP, 1 into Maildir)")
	fs.BoolVar(&c.quiet, "quiet", false, "print only errors")
	fs.BoolVar(&c.verbose, "verbose", false, "log every message")
	fs.BoolVar(&c.deleteSrc, "delete-after-copy", false, "delete each message from the source once it is safely at the destination (move)")
	fs.StringVar(&c.limits.MessagesPerSecond, "max-messages-per-second", "", "copy at most `N` messages a second")
	fs.StringVar(&c.limits.BytesPerSecond, "max-bytes-per-second", "", "copy at most `SIZE` a second (like 2MB)")
	fs.StringVar(&c.limits.DailyByteBudget, "daily-byte-budget", "", "stop cleanly (exit 5) once `SIZE` was copied this UTC day; the next run continues")
	fs.BoolVar(&c.mirror, "mirror-deletes", false, "also delete at the destination what is gone from the source since the last run (guarded)")
	fs.BoolVar(&c.forceDeletes, "force-deletes", false, "let --mirror-deletes delete more than max_delete_fraction (10%) of a folder")
	fs.Var(&c.folder, "folder", "copy only the folder `NAME` (repeatable)")
	fs.Var(&c.include, "include", "copy only folders matching `PATTERN` (* any, % any but /; repeatable)")
	fs.Var(&c.exclude, "exclude", "never copy folders matching `PATTERN` (repeatable)")
	fs.StringVar(&c.prefix, "prefix", "", "put every folder under the destination folder `NAME`")
	fs.StringVar(&c.filters.MaxSize, "max-size", "", "skip messages larger than `SIZE` (like 25MB)")
	fs.StringVar(&c.filters.MinSize, "min-size", "", "skip messages smaller than `SIZE`")
	fs.StringVar(&c.filters.Since, "since", "", "copy only messages received on or after `DATE` (2024-01-31)")
	fs.StringVar(&c.filters.Before, "before", "", "copy only messages received before `DATE`")
	fs.StringVar(&c.logFormat, "log-format", "text", "log lines as `text` or json")
	fs.StringVar(&c.summaryFile, "summary-file", "", "also write the JSON summary to `FILE`")
	fs.StringVar(&c.metricsFile, "metrics-file", "", "write the run's figures to `FILE` in the Prometheus text format")
	fs.StringVar(&c.progress, "progress", "auto", "progress bar: auto (on a terminal), always or never")
	if withJob {
		fs.StringVar(&c.job, "job", "", "run only the job `NAME`")
		fs.IntVar(&c.parallel, "parallel", 1, "run up to `N` jobs at once")
		fs.StringVar(&c.shard, "shard", "", "run only the jobs of shard `K/N` (K from 0, e.g. $JOB_COMPLETION_INDEX/4)")
		fs.StringVar(&c.failedFile, "failed-file", "", "write the names of the jobs that failed to `FILE`, one per line")
		fs.StringVar(&c.jobsFrom, "jobs-from", "", "run only the jobs named in `FILE` (one per line, as --failed-file writes)")
		fs.IntVar(&c.maxHostConnections, "max-host-connections", 0, "at most `N` connections to any one server, across parallel jobs")
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, help)
		fs.PrintDefaults()
	}
	return fs, c
}

// parseArgs parses flags that may come before, between or after the
// positional arguments ("copy SRC DST --json"), which flag.Parse alone does
// not allow.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage, nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "copy", "plan":
		help := fmt.Sprintf("Usage: mailferry %s SRC DST [flags]\n\n", cmd)
		fs, c := newFlagSet(cmd, help, stderr, false)
		pos, err := parseArgs(fs, args)
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		if err != nil {
			return exitUsage, nil // flag has printed the problem
		}
		if len(pos) != 2 {
			return exitUsage, usagef("%s takes a source and a destination, got %d arguments", cmd, len(pos))
		}
		job := Job{Name: "", Source: EndpointConfig{URL: pos[0]}, Destination: EndpointConfig{URL: pos[1]}, Dedup: c.dedup, Checkpoint: c.checkpoint, Workers: c.workers, DeleteAfterCopy: c.deleteSrc, MirrorDeletes: c.mirror}
		sum, err := runJob(ctx, job, c, cmd == "plan", stderr)
		code, err := outcome(sum, err)
		var sums []namedSummary
		if sum != nil {
			sums = []namedSummary{{"", sum}}
			printSummary(stdout, stderr, c, cmd == "plan", sums)
		}
		if cmd == "copy" {
			writeReports(c, sums, code, stderr)
		}
		return code, err
	case "run":
		help := "Usage: mailferry run CONFIG.yaml [--job NAME] [flags]\n\n"
		fs, c := newFlagSet(cmd, help, stderr, true)
		pos, err := parseArgs(fs, args)
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		if err != nil {
			return exitUsage, nil
		}
		if len(pos) != 1 {
			return exitUsage, usagef("run takes one config file, got %d arguments", len(pos))
		}
		return runConfig(ctx, pos[0], c, stdout, stderr)
	case "verify":
		help := "Usage: mailferry verify SRC DST [--deep] [flags]\n       mailferry verify CONFIG.yaml [--job NAME] [--deep] [flags]\n\n"
		fs, c := newFlagSet(cmd, help, stderr, true)
		fs.BoolVar(&c.deep, "deep", false, "also compare the SHA-256 of every body")
		pos, err := parseArgs(fs, args)
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		if err != nil {
			return exitUsage, nil
		}
		// verify reads; a flag about writing would be silently ignored.
		var ignored []string
		fs.Visit(func(f *flag.Flag) {
			if !verifyFlags[f.Name] {
				ignored = append(ignored, "--"+f.Name)
			}
		})
		if len(ignored) > 0 {
			return exitUsage, usagef("%s mean nothing to verify, which only reads", strings.Join(ignored, ", "))
		}
		var jobs []Job
		switch len(pos) {
		case 2:
			jobs = []Job{{Source: EndpointConfig{URL: pos[0]}, Destination: EndpointConfig{URL: pos[1]}, Dedup: c.dedup}}
		case 1:
			cfg, err := LoadConfig(pos[0])
			if err != nil {
				return exitUsage, err
			}
			for _, j := range cfg.Jobs {
				if c.job == "" || j.Name == c.job {
					if c.dedup != "" {
						j.Dedup = c.dedup
					}
					jobs = append(jobs, j)
				}
			}
			if len(jobs) == 0 {
				return exitUsage, usagef("no job named %q in %s", c.job, pos[0])
			}
		default:
			return exitUsage, usagef("verify takes a source and a destination, or one config file; got %d arguments", len(pos))
		}
		return verifyJobs(ctx, jobs, c, stdout, stderr)
	case "oauth":
		return oauthLogin(ctx, args, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "mailferry", version())
		return exitOK, nil
	case "help", "-h", "-help", "--help":
		if len(args) == 1 && args[0] != "help" {
			return dispatch(ctx, []string{args[0], "-help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK, nil
	}
	return exitUsage, usagef("unknown command %q", cmd)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

type namedSummary struct {
	name string
	sum  *plan.Summary
}

func outcome(sum *plan.Summary, err error) (int, error) {
	switch {
	case err != nil:
		return exitCode(err), err
	case sum.Incomplete():
		return exitIncomplete, nil
	case sum.BudgetReached:
		return exitBudget, nil
	}
	return exitOK, nil
}

func runConfig(ctx context.Context, path string, c *commonFlags, stdout, stderr io.Writer) (int, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return exitUsage, err
	}
	jobs, err := selectJobs(cfg.Jobs, c)
	if err != nil {
		return exitUsage, err
	}
	if len(jobs) == 0 && c.shard == "" {
		return exitUsage, usagef("no job to run in %s (--job %q, --jobs-from %q)", path, c.job, c.jobsFrom)
	}
	par := max(1, min(c.parallel, len(jobs)))
	jc := *c
	if par > 1 {
		jc.progress = "never" // one bar cannot show several jobs
	}
	// A cap on connections per server holds across the jobs running at
	// once: each endpoint of each job gets its share (source and
	// destination may be the same server), so the total cannot pass it.
	maxConns := 0
	if c.maxHostConnections > 0 {
		maxConns = max(1, c.maxHostConnections/(2*par))
	}

	type result struct {
		sum  *plan.Summary
		code int
	}
	results := make([]result, len(jobs))
	var mu sync.Mutex // stderr lines from parallel jobs
	lockedStderr := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stderr.Write(p)
	})
	next := make(chan int)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				j.Source.MaxConns, j.Destination.MaxConns = maxConns, maxConns
				sum, err := runJob(ctx, j, &jc, false, lockedStderr)
				code, err := outcome(sum, err)
				if err != nil {
					report(lockedStderr, fmt.Errorf("job %q: %w", j.Name, err))
				}
				results[i] = result{sum, code}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	var sums []namedSummary
	var failed []string
	worst := exitOK
	for i, r := range results {
		if r.sum != nil {
			sums = append(sums, namedSummary{jobs[i].Name, r.sum})
		}
		if r.sum == nil && r.code == exitOK { // not started: interrupted
			r.code = exitFailed
		}
		if r.code == exitFailed || r.code == exitIncomplete {
			failed = append(failed, jobs[i].Name)
		}
		worst = worse(worst, r.code)
	}
	printSummary(stdout, stderr, c, false, sums)
	writeReports(c, sums, worst, stderr)
	if c.failedFile != "" {
		data := strings.Join(failed, "\n")
		if data != "" {
			data += "\n"
		}
		if err := srcmaildir.WriteFileAtomic(c.failedFile, []byte(data)); err != nil {
			report(stderr, fmt.Errorf("write --failed-file: %w", err))
		}
	}
	return worst, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// selectJobs applies --job, --jobs-from and --shard, and the command
// line's overrides, to the jobs of a config file.
func selectJobs(all []Job, c *commonFlags) ([]Job, error) {
	var only map[string]bool
	if c.jobsFrom != "" {
		data, err := os.ReadFile(c.jobsFrom)
		if err != nil {
			return nil, usagef("--jobs-from: %v", err)
		}
		only = map[string]bool{}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				only[l] = true
			}
		}
	}
	k, n, err := parseShard(c.shard)
	if err != nil {
		return nil, err
	}
	var jobs []Job
	for _, j := range all {
		if c.job != "" && j.Name != c.job || only != nil && !only[j.Name] || n > 0 && shardOf(j.Name, n) != k {
			continue
		}
		// Flags given on the command line win over the file.
		if c.dedup != "" {
			j.Dedup = c.dedup
		}
		if c.workers != 0 {
			j.Workers = c.workers
		}
		if c.checkpoint != "" {
			j.Checkpoint = c.checkpoint
		}
		j.DeleteAfterCopy = j.DeleteAfterCopy || c.deleteSrc
		j.MirrorDeletes = j.MirrorDeletes || c.mirror
		jobs = append(jobs, j)
	}
	if c.checkpoint != "" && len(jobs) > 1 {
		return nil, usagef("--checkpoint names one file, but %d jobs would share it; each job has its own by default", len(jobs))
	}
	return jobs, nil
}

// parseShard reads "K/N" (0 <= K < N); "" is no sharding.
func parseShard(s string) (k, n int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, usagef("--shard %q: want K/N with 0 <= K < N, like 0/4", s)
	}
	return k, n, nil
}

// shardOf is the shard of a job: a stable hash of its name, so every
// machine running the same batch splits it the same way.
func shardOf(name string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64() % uint64(n))
}

// writeReports writes --summary-file and --metrics-file. A report that
// cannot be written is an error on stderr, not a change of exit code: the
// mail is where the exit code says.
func writeReports(c *commonFlags, sums []namedSummary, code int, stderr io.Writer) {
	if c.summaryFile != "" {
		if err := srcmaildir.WriteFileAtomic(c.summaryFile, summaryJSON(sums)); err != nil {
			report(stderr, fmt.Errorf("write --summary-file: %w", err))
		}
	}
	if c.metricsFile != "" {
		if err := srcmaildir.WriteFileAtomic(c.metricsFile, metricsText(sums, code, time.Now())); err != nil {
			report(stderr, fmt.Errorf("write --metrics-file: %w", err))
		}
	}
}

// worse orders exit codes by how bad they are: 2 > 1 > 4 > 3 > 5 > 0.
func worse(a, b int) int {
	rank := map[int]int{exitOK: 0, exitBudget: 1, exitIncomplete: 2, exitLocked: 3, exitFailed: 4, exitUsage: 5}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// runJob opens both ends and the checkpoint and runs one job. A dry run
// (plan) writes nothing: the destination is opened read-only if it exists,
// and the checkpoint only read.
func runJob(ctx context.Context, j Job, c *commonFlags, dryRun bool, stderr io.Writer) (*plan.Summary, error) {
	var progress plan.Progress
	if !dryRun && progressFor(c, stderr) {
		bar := newBarProgress(stderr, j.Name)
		defer bar.Close()
		progress, stderr = bar, bar
	}
	log := newLogger(c, stderr)
	rules, filter, err := j.selection(c)
	if err != nil {
		return nil, err
	}
	lc := j.Limits
	for _, f := range []struct{ flag, file *string }{{&c.limits.MessagesPerSecond, &lc.MessagesPerSecond}, {&c.limits.BytesPerSecond, &lc.BytesPerSecond}, {&c.limits.DailyByteBudget, &lc.DailyByteBudget}} {
		if *f.flag != "" {
			*f.file = *f.flag
		}
	}
	limits, err := lc.limits()
	if err != nil {
		return nil, usageError{err.Error()}
	}
	dedup, err := plan.ParseDedup(j.Dedup)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	if j.Workers < 0 {
		return nil, usagef("--workers must be at least 1")
	}
	if j.MirrorDeletes && j.DeleteAfterCopy {
		return nil, usagef("--mirror-deletes and --delete-after-copy together would delete the copies of what the move deleted")
	}
	srcEP, dstEP, err := j.endpoints()
	if err != nil {
		return nil, err
	}
	jobID := srcEP.String() + " -> " + dstEP.String()
	ckptPath := j.Checkpoint
	if ckptPath == "" {
		if ckptPath, err = defaultCheckpoint(j.Name, jobID); err != nil {
			return nil, err
		}
	}

	src, err := openSource(ctx, srcEP, j.Source, log)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", srcEP, err)
	}
	defer src.Close()

	var ckpt *state.Checkpoint
	if dryRun {
		ckpt, err = state.OpenReadOnly(ckptPath, jobID)
	} else {
		ckpt, err = state.Open(ckptPath, jobID)
	}
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()

	if c, ok := src.(source.CacheUser); ok {
		c.UseCache(ckpt)
	}

	dst, err := openDestination(ctx, dstEP, j.Destination, dryRun, log)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dstEP, err)
	}
	defer dst.Close()

	var grace time.Duration
	folderPar := c.folderParallelism
	if dstEP.Kind == endpoint.IMAP {
		grace = crashGrace // a server may commit a dead client's APPEND late
		// An IMAP server writes one mailbox at a time (Dovecot: 600-700
		// APPENDs/s into one mailbox whatever the connections), so folders
		// go in parallel. Into Maildir the disk is the limit and parallel
		// folders measured no better.
		if folderPar == 0 {
			folderPar = 3
		}
	}
	if folderPar == 0 {
		folderPar = 1
	}
	workers := j.Workers
	if workers == 0 {
		// Many in flight, few connections: into Maildir, deliveries
		// waiting together share one syncfs; into IMAP, messages waiting
		// for a mailbox's connection go in one MULTIAPPEND, and the more
		// wait, the fewer commands the server commits (bench, 5,000
		// messages: 16 in flight took 2.5x the MULTIAPPEND limit's time,
		// 64 took 1.2-2.4x). Spools together stay within 32 MB. A
		// source reading one message per connection still reads only as
		// many at once as it has connections.
		workers = 16
		if dstEP.Kind == endpoint.IMAP {
			workers = 64
		}
	}
	sum, err := plan.Run(ctx, src, dst, ckpt, plan.Options{Dedup: dedup, Workers: workers, DryRun: dryRun, DeleteAfterCopy: j.DeleteAfterCopy, CrashGrace: grace,
		MirrorDeletes: j.MirrorDeletes, MaxDeleteFraction: j.MaxDeleteFraction, ForceDeletes: c.forceDeletes, FolderParallelism: folderPar, Limits: limits,
		Folders: rules, Filter: filter, Progress: progress, Log: log})
	if errors.Is(err, plan.ErrNothingSelected) {
		err = fmt.Errorf("source %s: %w", srcEP, err)
	}
	if cerr := ckpt.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return sum, err
}

// selection is the job's folder rules and filters, with the command
// line's on top: --folder and --include replace the file's include list,
// --exclude adds to its exclude list, the others replace.
func (j Job) selection(c *commonFlags) (plan.FolderRules, plan.Filter, error) {
	rules := j.Folders.rules()
	if p, _ := lookupProvider(j.Source.Provider); !j.Folders.AllMail {
		rules.ExcludeRoles = p.skipRoles
	}
	if len(c.folder)+len(c.include) > 0 {
		rules.Include = append(slices.Clone([]string(c.folder)), c.include...)
	}
	rules.Exclude = append(slices.Clone(rules.Exclude), c.exclude...)
	if c.prefix != "" {
		rules.Prefix = c.prefix
	}
	fc := j.Filters
	for _, f := range []struct{ flag, file *string }{{&c.filters.MaxSize, &fc.MaxSize}, {&c.filters.MinSize, &fc.MinSize}, {&c.filters.Since, &fc.Since}, {&c.filters.Before, &fc.Before}} {
		if *f.flag != "" {
			*f.file = *f.flag
		}
	}
	filter, err := fc.filter()
	if err != nil {
		return rules, filter, usageError{err.Error()}
	}
	if _, err := plan.NewFolderRules(rules); err != nil {
		return rules, filter, usageError{err.Error()}
	}
	return rules, filter, nil
}

// verifyFlags are the flags verify takes: what selects and matches
// messages, as the copy did, and how to report.
var verifyFlags = map[string]bool{"json": true, "dedup": true, "quiet": true, "verbose": true, "folder": true, "include": true,
	"exclude": true, "prefix": true, "max-size": true, "min-size": true, "since": true, "before": true, "log-format": true,
	"job": true, "deep": true}

// crashGrace: see plan.Options.CrashGrace.
const crashGrace = 2 * time.Second

// endpoints parses the job's two URLs; a bad one is a usage error.
func (j Job) endpoints() (src, dst *endpoint.Endpoint, err error) {
	if src, err = endpoint.Parse(j.Source.URL); err != nil {
		return nil, nil, usageError{"source: " + err.Error()}
	}
	if dst, err = endpoint.Parse(j.Destination.URL); err != nil {
		return nil, nil, usageError{"destination: " + err.Error()}
	}
	return src, dst, nil
}

// defaultCheckpoint is $XDG_STATE_HOME/mailferry/NAME.ckpt; a job given on
// the command line is named after a hash of its endpoints.
func defaultCheckpoint(name, jobID string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no checkpoint directory (set XDG_STATE_HOME or use --checkpoint): %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	if name == "" {
		h := sha256.Sum256([]byte(jobID))
		name = "copy-" + hex.EncodeToString(h[:8])
	}
	return filepath.Join(dir, "mailferry", name+".ckpt"), nil
}

func printSummary(stdout, stderr io.Writer, c *commonFlags, dryRun bool, sums []namedSummary) {
	if c.json {
		stdout.Write(summaryJSON(sums))
		return
	}
	if dryRun {
		for _, s := range sums {
			printPlan(stdout, s.sum)
		}
		return
	}
	if c.quiet {
		return
	}
	for _, s := range sums {
		prefix := ""
		if s.name != "" {
			prefix = s.name + ": "
		}
		fmt.Fprintln(stderr, termSafe(prefix)+verdict(s.sum))
	}
}

func printPlan(w io.Writer, s *plan.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FOLDER\tDESTINATION\tMESSAGES\tTO COPY\tDUPLICATES\tPRESENT\tFILTERED\tFLAGS\tBYTES\t")
	for _, f := range s.Folders {
		note := ""
		if f.Error != "" {
			note = "  error: " + termSafe(f.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", termSafe(f.Name), termSafe(f.Destination), f.Messages, f.Copied, f.DuplicatesSkipped, f.AlreadyPresent, f.Filtered, f.FlagsUpdated, humanBytes(f.Bytes), note)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Copied, s.DuplicatesSkipped, s.AlreadyPresent, s.Filtered, s.FlagsUpdated, humanBytes(s.Bytes))
	tw.Flush()
	if s.MirrorDeleted > 0 {
		fmt.Fprintf(w, "mirror: %d copies would be deleted at the destination (gone from the source)\n", s.MirrorDeleted)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jobsSummary is the --json output of run: totals, and each job.
type jobsSummary struct {
	plan.Summary
	Jobs []jobSummary `json:"jobs"`
}

type jobSummary struct {
	Name string `json:"name"`
	*plan.Summary
}

func totals(sums []namedSummary) jobsSummary {
	out := jobsSummary{Summary: plan.Summary{Folders: []*plan.FolderSummary{}, Errors: []plan.ErrorEntry{}}, Jobs: []jobSummary{}}
	for _, s := range sums {
		t := &out.Summary
		t.Copied += s.sum.Copied
		t.DuplicatesSkipped += s.sum.DuplicatesSkipped
		t.AlreadyPresent += s.sum.AlreadyPresent
		t.Failed += s.sum.Failed
		t.FlagsUpdated += s.sum.FlagsUpdated
		t.Vanished += s.sum.Vanished
		t.Deleted += s.sum.Deleted
		t.MirrorDeleted += s.sum.MirrorDeleted
		t.Bytes += s.sum.Bytes
		t.ElapsedSeconds += s.sum.ElapsedSeconds
		t.Folders = append(t.Folders, s.sum.Folders...)
		t.Errors = append(t.Errors, s.sum.Errors...)
		out.Jobs = append(out.Jobs, jobSummary{s.name, s.sum})
	}
	return out
}

// verifyJobs runs verify for each job: read-only on both ends, no
// checkpoint. Exit 0 when complete, 3 when anything is missing or differs.
func verifyJobs(ctx context.Context, jobs []Job, c *commonFlags, stdout, stderr io.Writer) (int, error) {
	log := newLogger(c, stderr)
	worst := exitOK
	var out []namedVerify
	for _, j := range jobs {
		sum, err := verifyJob(ctx, j, c, log)
		if err != nil {
			if len(jobs) > 1 {
				err = fmt.Errorf("job %q: %w", j.Name, err)
			}
			report(stderr, err)
			worst = worse(worst, exitCode(err))
			continue
		}
		out = append(out, namedVerify{j.Name, sum})
		if !sum.Complete() {
			worst = worse(worst, exitIncomplete)
		}
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(out) == 1 && len(jobs) == 1 {
			enc.Encode(out[0].sum)
		} else {
			enc.Encode(out)
		}
		return worst, nil
	}
	for _, v := range out {
		if v.name != "" {
			fmt.Fprintf(stdout, "job %s\n", v.name)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "FOLDER\tDESTINATION\tMESSAGES\tPRESENT\tMISSING\tDIFFERING\tEXTRA\t")
		for _, f := range v.sum.Folders {
			note := ""
			if f.Error != "" {
				note = "  error: " + termSafe(f.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", termSafe(f.Name), termSafe(f.Destination), f.Messages, f.Present, f.Missing, f.Differing, f.Extra, note)
		}
		fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t\n", v.sum.Present, v.sum.Missing, v.sum.Differing, v.sum.Extra)
		tw.Flush()
		for i, e := range v.sum.Errors {
			if i == 20 {
				fmt.Fprintf(stderr, "mailferry: ... and %d more (see --json)\n", len(v.sum.Errors)-20)
				break
			}
			fmt.Fprintf(stderr, "mailferry: %s: %s: %s\n", termSafe(e.Folder), termSafe(e.Message), termSafe(e.Error))
		}
	}
	return worst, nil
}

type namedVerify struct {
	name string
	sum  *plan.VerifySummary
}

// MarshalJSON gives each job's summary its name.
func (n namedVerify) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name string `json:"name"`
		*plan.VerifySummary
	}{n.name, n.sum})
}

func verifyJob(ctx context.Context, j Job, c *commonFlags, log *slog.Logger) (*plan.VerifySummary, error) {
	dedup, err := plan.ParseDedup(j.Dedup)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	// What the copy with the same arguments promised: its folders, their
	// destination names and its filters.
	rules, filter, err := j.selection(c)
	if err != nil {
		return nil, err
	}
	srcEP, dstEP, err := j.endpoints()
	if err != nil {
		return nil, err
	}
	src, err := openSource(ctx, srcEP, j.Source, log)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", srcEP, err)
	}
	defer src.Close()
	dst, err := openDestination(ctx, dstEP, j.Destination, true, log) // read-only
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dstEP, err)
	}
	defer dst.Close()
	return plan.Verify(ctx, src, dst, plan.VerifyOptions{Dedup: dedup, Deep: c.deep, Folders: rules, Filter: filter, Log: log})
}

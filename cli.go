package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
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

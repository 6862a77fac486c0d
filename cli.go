package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/spf13/pflag"
)

const usage = `mailferry moves and backs up email between IMAP, POP3, Maildir and mbox.

Usage:
  mailferry copy SRC DST [flags]      copy what is new from SRC to DST
  mailferry plan SRC DST [flags]      show what copy would do; change nothing
  mailferry run CONFIG.yaml [flags]   run the jobs of a config file
  mailferry verify SRC DST [--deep]   check every source message is at DST
  mailferry verify CONFIG.yaml        ... for the jobs of a config file
  mailferry oauth login --provider P --client-id ID --out FILE
                                      get an OAuth2 refresh token (browser sign-in)
  mailferry completion bash|zsh|fish  print a shell completion script
  mailferry version                   print the version
  mailferry help [COMMAND]            show help

Endpoints:
  maildir:PATH[?layout=fs|flat]       a Maildir tree (Maildir++ by default)
  imaps://USER@HOST[:PORT]            IMAP over TLS (imap:// for STARTTLS)
  pop3s://USER@HOST[:PORT]            POP3 over TLS (pop3:// for STLS); a source only
  mbox:PATH[?folder=NAME]             an mbox file or tree; written: DIR, one file per folder

Passwords: MAILFERRY_SRC_PASSWORD and MAILFERRY_DST_PASSWORD; in a config
file, password_file or password_cmd of the endpoint.

Exit codes: 0 done, 1 run failed, 2 usage or config error,
3 finished but some messages failed (each named in the summary),
4 another run of the job is still going, 5 stopped at the daily byte budget.
`

// usageText is the overview, with each scheme's URL options as the store
// kinds registered them.
func usageText() string {
	var b strings.Builder
	head, tail, _ := strings.Cut(usage, "\nPasswords:")
	b.WriteString(head)
	b.WriteString("  URL options (?NAME=VALUE&...):\n")
	byOpts := map[string][]string{}
	var order []string
	for _, sc := range endpoint.Schemes() {
		k := strings.Join(sc.Options, ", ")
		if _, seen := byOpts[k]; !seen {
			order = append(order, k)
		}
		byOpts[k] = append(byOpts[k], sc.Name)
	}
	for _, k := range order {
		if k != "" {
			fmt.Fprintf(&b, "    %-20s %s\n", strings.Join(byOpts[k], ", ")+":", k)
		}
	}
	b.WriteString("\nPasswords:" + tail)
	return b.String()
}

// invocation is what the command line said: the settings its flags were
// bound to, and which flags it gave.
type invocation struct {
	run   RunSettings
	job   Job
	flags *pflag.FlagSet
	// pass counts --watch passes after the first; effective is the
	// settings the last pass ran with.
	pass      int
	effective *RunSettings
}

// settings returns the run's settings: the file's (if any), the flags
// given on top, the declared defaults under both; checked once.
func (in *invocation) settings(file RunSettings) (*RunSettings, error) {
	rs := file
	applyFlags(in.flags, &rs, &in.run)
	if err := checkMins(in.flags, &in.run); err != nil {
		return nil, err
	}
	fillDefaults(&rs)
	if in.pass > 0 {
		rs.quietNoop, rs.Progress = true, "never"
	}
	in.effective = &rs
	return &rs, rs.check()
}

// apply puts the flags given on top of a job's own settings, and checks
// the result once.
func (in *invocation) apply(j Job) (Job, error) {
	applyFlags(in.flags, &j, &in.job)
	err := checkMins(in.flags, &in.job)
	if err == nil {
		err = j.check()
	}
	if err != nil {
		if j.Name != "" {
			return j, usagef("job %q: %v", j.Name, err)
		}
		return j, usageError{msg: err.Error()}
	}
	return j, nil
}

// newCommand builds the command tree. The result of the command that ran
// is left in *code.
func newCommand(ctx context.Context, stdout, stderr io.Writer, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:           "mailferry",
		Long:          usageText(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			fmt.Fprint(stderr, usageText())
			*code = exitUsage
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetHelpTemplate(helpTemplate)
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.HiddenDefaultCmd = true

	// A subcommand gets the settings it takes, bound to a fresh invocation.
	sub := func(use, short string, run func(in *invocation, args []string) (int, error)) *cobra.Command {
		in := &invocation{}
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ArbitraryArgs,
			RunE: func(c *cobra.Command, args []string) error {
				var err error
				*code, err = run(in, args)
				return err
			},
		}
		name, _, _ := strings.Cut(use, " ")
		bindFlags(c, &in.run, name)
		bindFlags(c, &in.job, name)
		in.flags = c.Flags()
		root.AddCommand(c)
		return c
	}
	for _, name := range []string{"copy", "plan"} {
		short := "copy what is new from SRC to DST"
		if name == "plan" {
			short = "show what copy would do; change nothing"
		}
		sub(name+" SRC DST [flags]", short, func(in *invocation, args []string) (int, error) {
			jobs := func() []Job {
				if len(args) != 2 {
					return nil
				}
				j, err := in.apply(Job{Source: endpointArg(args[0]), Destination: endpointArg(args[1])})
				if err != nil {
					return nil
				}
				return []Job{j}
			}
			return watch(ctx, in, stderr, name == "copy" && in.run.Watch, jobs, func(ctx context.Context) (int, error) {
				return copyCommand(ctx, name, in, args, stdout, stderr)
			})
		})
	}
	sub("run CONFIG.yaml [flags]", "run the jobs of a config file", func(in *invocation, args []string) (int, error) {
		if len(args) != 1 {
			return exitUsage, usagef("run takes one config file, got %d arguments", len(args))
		}
		// Whether the file asks for a watch is known before the first pass,
		// so that a stop lets that pass finish too.
		watching := in.run.Watch
		if cfg, err := LoadConfig(args[0]); err == nil && cfg.Run.Watch {
			watching = true
		}
		jobs := func() []Job {
			cfg, err := LoadConfig(args[0])
			if err != nil {
				return nil
			}
			return cfg.Jobs
		}
		return watch(ctx, in, stderr, watching, jobs, func(ctx context.Context) (int, error) {
			return runConfig(ctx, args[0], in, stdout, stderr)
		})
	})
	sub("verify SRC DST | CONFIG.yaml [flags]", "check every source message is at the destination", func(in *invocation, args []string) (int, error) {
		return verifyCommand(ctx, in, args, stdout, stderr)
	})
	root.AddCommand(oauthCommand(ctx, stdout, stderr, code))
	root.AddCommand(manCommand(root, stderr))
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "mailferry", version()) },
	})
	return root
}

// helpTemplate keeps cobra's help short: the command's own text, then its
// flags.
const helpTemplate = `{{with .Long}}{{.}}{{else}}Usage: mailferry {{.Use}}

{{.Short}}
{{end}}{{if .HasAvailableLocalFlags}}
Flags:
{{.LocalFlags.FlagUsages}}{{end}}`

// copyCommand runs copy or plan of SRC to DST.
func copyCommand(ctx context.Context, cmd string, in *invocation, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) != 2 {
		return exitUsage, usagef("%s takes a source and a destination, got %d arguments", cmd, len(args))
	}
	rs, err := in.settings(RunSettings{})
	if err != nil {
		return exitUsage, err
	}
	job, err := in.apply(Job{Source: endpointArg(args[0]), Destination: endpointArg(args[1])})
	if err != nil {
		return exitUsage, err
	}
	sum, err := runJob(ctx, job, rs, cmd == "plan", stderr)
	code, err := outcome(sum, err)
	sums := []namedSummary{{"", sum, code}}
	printSummary(stdout, stderr, rs, cmd == "plan", sums)
	if cmd == "copy" {
		writeReports(rs, sums, stderr)
	}
	return code, err
}

// verifyCommand checks SRC against DST, or the jobs of a config file.
func verifyCommand(ctx context.Context, in *invocation, args []string, stdout, stderr io.Writer) (int, error) {
	var jobs []Job
	file := RunSettings{}
	switch len(args) {
	case 2:
		jobs = []Job{{Source: endpointArg(args[0]), Destination: endpointArg(args[1])}}
	case 1:
		cfg, err := LoadConfig(args[0])
		if err != nil {
			return exitUsage, err
		}
		file = cfg.Run
		for _, j := range cfg.Jobs {
			if in.run.Job == "" || j.Name == in.run.Job {
				jobs = append(jobs, j)
			}
		}
		if len(jobs) == 0 {
			return exitUsage, noSuchJob(in.run.Job, cfg.Jobs)
		}
	default:
		return exitUsage, usagef("verify takes a source and a destination, or one config file; got %d arguments", len(args))
	}
	rs, err := in.settings(file)
	if err != nil {
		return exitUsage, err
	}
	for i := range jobs {
		if jobs[i], err = in.apply(jobs[i]); err != nil {
			return exitUsage, err
		}
	}
	return verifyJobs(ctx, jobs, rs, stdout, stderr)
}

// flagError says what to do about a flag the command does not take.
func flagError(c *cobra.Command, err error) error {
	hint := fmt.Sprintf(`run "mailferry help %s" for the flags it takes`, c.Name())
	switch {
	case strings.Contains(err.Error(), "--dry-run"), strings.HasSuffix(err.Error(), "in -n"):
		hint = `"mailferry plan SRC DST" shows what copy would do and changes nothing`
	case c.Name() == "verify":
		hint = "verify takes the flags that choose what copy promised (folders, filters, dedup); flags about writing mean nothing to it"
	}
	return usageError{msg: err.Error(), hint: hint}
}

// singleDash is a long flag written with one dash (-json), which Go's flag
// package took and pflag would read as -j -s -o -n.
var singleDash = regexp.MustCompile(`^-[a-z][a-z-]+(=.*)?$`)

// dispatch runs the command line args and returns the exit code.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == "--" {
			break
		}
		if singleDash.MatchString(a) {
			args[i] = "-" + a
		}
	}
	if len(args) > 0 {
		switch args[0] {
		case "--help", "-h":
			args[0] = "help"
		case "--version":
			args[0] = "version"
		}
	}
	code := exitOK
	root := newCommand(ctx, stdout, stderr, &code)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if code == exitOK {
			code = exitCode(err)
		}
		return code, err
	}
	return code, nil
}

// Set at build time by the release build (-ldflags "-X main.buildVersion=...").
var buildVersion, buildCommit, buildDate string

// version is "VERSION (commit COMMIT, built DATE)": from the release
// build's flags, else from what the go command recorded (the module
// version for go install, the VCS revision and time for go build in a
// checkout).
func version() string {
	v, commit, date, dateWord := buildVersion, buildCommit, buildDate, "built"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value[:min(len(s.Value), 12)]
			case s.Key == "vcs.time" && date == "":
				date, dateWord = s.Value, "committed" // the best date a plain build has
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	var parts []string
	if commit != "" {
		parts = append(parts, "commit "+commit)
	}
	if date != "" {
		parts = append(parts, dateWord+" "+date)
	}
	if len(parts) == 0 {
		return v
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/plan"
)

// Config is a YAML file of jobs (see README, "Config reference"), and the
// settings of the run at its top level.
type Config struct {
	Run  RunSettings `yaml:",inline"`
	Jobs []Job       `yaml:"jobs"`
}

// Job is one copy job. Its settings are declared here, with their flags
// (see settings.go); a flag given on the command line wins over the file.
type Job struct {
	Name        string         `yaml:"name"`
	Source      EndpointConfig `yaml:"source"`
	Destination EndpointConfig `yaml:"destination"`
	Dedup       string         `yaml:"dedup" flag:"dedup" arg:"MODE" enum:"message-id,content,none" cmds:"copy,plan,run,verify" help:"dedup MODE: message-id (default), content or none"`
	Checkpoint  string         `yaml:"checkpoint" flag:"checkpoint" arg:"FILE" file:"true" help:"checkpoint FILE (default: under $XDG_STATE_HOME/mailferry/)"`
	Workers     int            `yaml:"workers" flag:"workers" min:"1" arg:"N" help:"N messages in flight at once (default 64 into IMAP, 128 with ?compress=on or a server 10 ms or more away, 16 into Maildir)"`
	// FolderParallelism is how many folders are copied at once.
	FolderParallelism int `yaml:"folder_parallelism" flag:"folder-parallelism" min:"1" arg:"N" help:"N folders copied at once, sharing the workers (default 3 into IMAP, 1 into Maildir)"`
	// DeleteAfterCopy makes the job a move: see plan.Options.
	DeleteAfterCopy bool `yaml:"delete_after_copy" flag:"delete-after-copy" help:"delete each message from the source once it is safely at the destination (move)"`
	// MirrorDeletes deletes at the destination what is gone from the
	// source (guarded: see plan.Options).
	MirrorDeletes     bool    `yaml:"mirror_deletes" flag:"mirror-deletes" help:"also delete at the destination what is gone from the source since the last run (guarded)"`
	MaxDeleteFraction float64 `yaml:"max_delete_fraction" flag:"max-delete-fraction" arg:"F" help:"mirror deletes at most the fraction F of a folder's messages (default 0.10)"`
	ForceDeletes      bool    `yaml:"force_deletes" flag:"force-deletes" help:"let --mirror-deletes delete more than max_delete_fraction of a folder"`
	// GmailLabels is where a Gmail source's labels go: folders (one copy
	// in each label's folder) or keywords (one copy per message, its
	// labels as keywords).
	GmailLabels string `yaml:"gmail_labels" flag:"gmail-labels" arg:"POLICY" enum:"folders,keywords" cmds:"copy,plan,run,verify" help:"a Gmail source's labels become folders (default: a copy in each) or keywords (one copy per message)"`
	// Limits pace the job and cap its bytes per day.
	Limits LimitsConfig `yaml:"limits"`
	// Folders and Filters choose what is copied, and where to.
	Folders FolderConfig `yaml:"folders"`
	Filters FilterConfig `yaml:"filters"`

	line int        // where the job starts in the file, for errors
	node *yaml.Node // the job in the file, to find a key's line
}

// RunSettings are the settings of one invocation: how it reports, and for
// run, how it goes through the jobs. In a config file they are top-level
// keys. Job, JobsFrom, Shard and Deep have no key: they say which of the
// file's jobs this invocation runs, or how verify looks, not how the jobs
// run.
type RunSettings struct {
	JSON               bool   `yaml:"json" flag:"json" cmds:"copy,plan,run,verify" help:"print a JSON summary on stdout at the end"`
	Quiet              bool   `yaml:"quiet" flag:"quiet" cmds:"copy,plan,run,verify" help:"print only errors"`
	Verbose            bool   `yaml:"verbose" flag:"verbose" cmds:"copy,plan,run,verify" help:"log every message"`
	LogFormat          string `yaml:"log_format" flag:"log-format" def:"text" enum:"text,json" arg:"text" cmds:"copy,plan,run,verify" help:"log lines as text or json"`
	Progress           string `yaml:"progress" flag:"progress" def:"auto" enum:"auto,always,never" arg:"MODE" help:"progress bar MODE: auto (on a terminal), always or never"`
	SummaryFile        string `yaml:"summary_file" flag:"summary-file" arg:"FILE" file:"true" cmds:"copy,run" help:"also write the JSON summary to FILE"`
	MetricsFile        string `yaml:"metrics_file" flag:"metrics-file" arg:"FILE" file:"true" cmds:"copy,run" help:"write the run's figures to FILE in the Prometheus text format"`
	Parallel           int    `yaml:"parallel" flag:"parallel" min:"1" def:"1" arg:"N" cmds:"run" help:"run up to N jobs at once"`
	MaxHostConnections int    `yaml:"max_host_connections" flag:"max-host-connections" min:"1" arg:"N" cmds:"run" help:"at most N connections to any one server, across parallel jobs"`
	FailedFile         string `yaml:"failed_file" flag:"failed-file" arg:"FILE" file:"true" cmds:"run" help:"write the names of the jobs that failed to FILE, one per line"`
	Job                string `yaml:"-" flag:"job" arg:"NAME" cmds:"run,verify" help:"run only the job NAME"`
	JobsFrom           string `yaml:"-" flag:"jobs-from" arg:"FILE" file:"true" cmds:"run" help:"run only the jobs named in FILE (one per line, as --failed-file writes)"`
	Shard              string `yaml:"-" flag:"shard" arg:"K/N" cmds:"run" help:"run only the jobs of shard K/N (K from 0, e.g. $JOB_COMPLETION_INDEX/4)"`
	Deep               bool   `yaml:"-" flag:"deep" cmds:"verify" help:"also compare the SHA-256 of every body"`
	Watch              bool   `yaml:"watch" flag:"watch" cmds:"copy,run" help:"after the run, stay up and copy what arrives, a pass every --watch-interval seconds, until SIGTERM or Ctrl-C"`
	WatchInterval      int    `yaml:"watch_interval" flag:"watch-interval" min:"1" def:"10" arg:"SECONDS" cmds:"copy,run" help:"seconds between two passes of --watch"`

	// quietNoop leaves out the verdict of a job that found nothing to do
	// (a --watch pass after the first).
	quietNoop bool
}

func (e EndpointConfig) usesRefreshToken() bool {
	return e.OAuth2RefreshTokenFile != "" || e.OAuth2RefreshTokenCmd != "" || e.OAuth2ClientID != ""
}

// FolderConfig is plan.FolderRules as written in a config file.
type FolderConfig struct {
	Include []string          `yaml:"include" flag:"include" arg:"PATTERN" cmds:"copy,plan,run,verify" alias:"folder" aliasarg:"NAME" aliashelp:"copy only the folder NAME (repeatable; the same list as --include)" help:"copy only folders matching PATTERN (* any, % any but /; repeatable)"`
	Exclude []string          `yaml:"exclude" flag:"exclude" arg:"PATTERN" merge:"append" cmds:"copy,plan,run,verify" help:"never copy folders matching PATTERN (repeatable; adds to the file's list)"`
	Map     map[string]string `yaml:"map" flag:"map" arg:"SRC=DST" cmds:"copy,plan,run,verify" help:"SRC=DST puts the source folder SRC at the destination folder DST (repeatable)"`
	Prefix  string            `yaml:"prefix" flag:"prefix" arg:"NAME" cmds:"copy,plan,run,verify" help:"put every folder under the destination folder NAME"`
	// AllMail copies a Gmail source's folders as its server lists them,
	// All Mail, Important and Starred whole (by default they are left
	// out, and All Mail's messages no label folder holds go to Archive).
	AllMail bool `yaml:"all_mail" flag:"all-mail" cmds:"copy,plan,run,verify" help:"copy a Gmail source's All Mail, Important and Starred folders whole, not Archive"`
}

func (f FolderConfig) rules() plan.FolderRules {
	return plan.FolderRules{Include: f.Include, Exclude: f.Exclude, Map: f.Map, Prefix: f.Prefix}
}

// LimitsConfig is plan.Limits as written in a config file.
type LimitsConfig struct {
	MessagesPerSecond string `yaml:"max_messages_per_second" flag:"max-messages-per-second" arg:"N" help:"copy at most N messages a second"`
	BytesPerSecond    string `yaml:"max_bytes_per_second" flag:"max-bytes-per-second" arg:"SIZE" help:"copy at most SIZE a second (like 2MB)"`
	DailyByteBudget   string `yaml:"daily_byte_budget" flag:"daily-byte-budget" arg:"SIZE" help:"stop cleanly (exit 5) once SIZE was copied this UTC day; the next run continues (none: no budget, not even Gmail's)"`
}

func (l LimitsConfig) limits() (plan.Limits, error) {
	var out plan.Limits
	if l.MessagesPerSecond != "" {
		n, err := strconv.ParseFloat(l.MessagesPerSecond, 64)
		if err != nil || n <= 0 {
			return out, atKey("max_messages_per_second", fmt.Errorf("max_messages_per_second: %q is not a positive number", l.MessagesPerSecond))
		}
		out.MessagesPerSecond = n
	}
	bps, err := parseSize("max_bytes_per_second", l.BytesPerSecond)
	if err != nil {
		return out, err
	}
	out.BytesPerSecond = float64(bps)
	if strings.EqualFold(l.DailyByteBudget, "none") {
		return out, nil // no budget, not even a provider's
	}
	if out.ByteBudget, err = parseSize("daily_byte_budget", l.DailyByteBudget); err != nil {
		return out, err
	}
	return out, nil
}

// FilterConfig is plan.Filter as written in a config file: sizes like
// "25MB", dates like "2024-01-31" (UTC) or RFC 3339.
type FilterConfig struct {
	MaxSize string `yaml:"max_size" flag:"max-size" arg:"SIZE" cmds:"copy,plan,run,verify" help:"skip messages larger than SIZE (like 25MB)"`
	MinSize string `yaml:"min_size" flag:"min-size" arg:"SIZE" cmds:"copy,plan,run,verify" help:"skip messages smaller than SIZE"`
	Since   string `yaml:"since" flag:"since" arg:"DATE" cmds:"copy,plan,run,verify" help:"copy only messages received on or after DATE (2024-01-31)"`
	Before  string `yaml:"before" flag:"before" arg:"DATE" cmds:"copy,plan,run,verify" help:"copy only messages received before DATE"`
}

func (f FilterConfig) filter() (plan.Filter, error) {
	var out plan.Filter
	var err error
	if out.MaxSize, err = parseSize("max_size", f.MaxSize); err != nil {
		return out, err
	}
	if out.MinSize, err = parseSize("min_size", f.MinSize); err != nil {
		return out, err
	}
	if out.Since, err = parseDate("since", f.Since); err != nil {
		return out, err
	}
	if out.Before, err = parseDate("before", f.Before); err != nil {
		return out, err
	}
	return out, nil
}

var reSize = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?[bB])?$`)

// parseSize reads "1048576", "500k", "25MB", "2.5GB" (powers of 1024, as
// mail servers count).
func parseSize(what, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	m := reSize.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, atKey(what, fmt.Errorf("%s: %q is not a size (like 25MB)", what, s))
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, atKey(what, fmt.Errorf("%s: %q: %v", what, s, err))
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
	return int64(n * float64(int64(1)<<shift)), nil
}

func parseDate(what, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, atKey(what, fmt.Errorf("%s: %q is not a date (like 2024-01-31 or 2024-01-31T08:00:00Z)", what, s))
}

// EndpointConfig is an endpoint URL, written either as a string or as a
// map with the URL and the fields that do not belong in a URL.
type EndpointConfig struct {
	URL          string
	PasswordFile string
	PasswordCmd  string
	// OAuth2TokenCmd prints an OAuth2 access token (run by sh -c); login
	// then uses OAUTHBEARER or XOAUTH2 instead of a password.
	OAuth2TokenCmd string
	// Provider names a preset (gmail, office365): its IMAP server when the
	// URL is left out (then User is the address), its OAuth2 endpoints and
	// its limits.
	Provider string
	User     string
	// OAuth2 with a refresh token: mailferry gets access tokens itself.
	OAuth2ClientID         string
	OAuth2ClientSecretFile string
	OAuth2TokenURL         string
	OAuth2RefreshTokenFile string
	OAuth2RefreshTokenCmd  string
	// Admin credentials, one for many mailboxes (oauthadmin.go): a Google
	// service account's key file, or Microsoft 365 app-only access (the
	// client's ID and secret) in a tenant.
	OAuth2ServiceAccountFile string
	OAuth2AppOnly            bool
	OAuth2Tenant             string
	// OAuth2ClientCertificateFile: app-only access with a certificate
	// (PEM, with its private key) instead of a client secret (oauthcert.go).
	OAuth2ClientCertificateFile string
	// MaxConns caps the endpoint's connections (run --max-host-connections);
	// not in the file.
	MaxConns int `yaml:"-"`
	line     int
}

var endpointKeys = []string{"url", "provider", "user", "password_file", "password_cmd", "oauth2_token_cmd",
	"oauth2_client_id", "oauth2_client_secret_file", "oauth2_token_url", "oauth2_refresh_token_file", "oauth2_refresh_token_cmd",
	"oauth2_service_account_file", "oauth2_app_only", "oauth2_tenant", "oauth2_client_certificate_file"}

// UnmarshalYAML accepts a scalar URL or a mapping. It checks the mapping's
// keys itself: yaml.v3 does not apply KnownFields inside custom unmarshalers.
func (e *EndpointConfig) UnmarshalYAML(n *yaml.Node) error {
	e.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		e.URL = n.Value
		e.shortcut()
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %q must be a string", v.Line, k.Value)
			}
			field := map[string]*string{
				"url": &e.URL, "provider": &e.Provider, "user": &e.User,
				"password_file": &e.PasswordFile, "password_cmd": &e.PasswordCmd, "oauth2_token_cmd": &e.OAuth2TokenCmd,
				"oauth2_client_id": &e.OAuth2ClientID, "oauth2_client_secret_file": &e.OAuth2ClientSecretFile, "oauth2_token_url": &e.OAuth2TokenURL,
				"oauth2_refresh_token_file": &e.OAuth2RefreshTokenFile, "oauth2_refresh_token_cmd": &e.OAuth2RefreshTokenCmd,
				"oauth2_service_account_file": &e.OAuth2ServiceAccountFile, "oauth2_tenant": &e.OAuth2Tenant,
				"oauth2_client_certificate_file": &e.OAuth2ClientCertificateFile,
			}[k.Value]
			switch {
			case k.Value == "oauth2_app_only":
				b, err := strconv.ParseBool(v.Value)
				if err != nil {
					return fmt.Errorf("line %d: oauth2_app_only: want true or false, not %q", v.Line, v.Value)
				}
				e.OAuth2AppOnly = b
			case field != nil:
				*field = v.Value
			default:
				return fmt.Errorf("line %d: unknown key %q (an endpoint takes: %s)", k.Line, k.Value, strings.Join(endpointKeys, ", "))
			}
		}
		for _, f := range []*string{&e.PasswordFile, &e.OAuth2ClientSecretFile, &e.OAuth2RefreshTokenFile, &e.OAuth2ServiceAccountFile, &e.OAuth2ClientCertificateFile} {
			x, err := expandHome(*f)
			if err != nil {
				return fmt.Errorf("line %d: %v", n.Line, err)
			}
			*f = x
		}
		e.shortcut()
		if e.URL == "" && e.Provider != "" {
			p, err := lookupProvider(e.Provider)
			if err != nil {
				return fmt.Errorf("line %d: %v", n.Line, err)
			}
			if e.User == "" {
				return fmt.Errorf("line %d: provider %s needs a user (the mail address)", n.Line, p.name)
			}
			e.URL = "imaps://" + url.PathEscape(e.User) + "@" + p.imapHost
		}
		return nil
	}
	return fmt.Errorf("line %d: an endpoint is a URL or a map with a url key", n.Line)
}

// expandHome turns a leading "~/" into the home directory, as a shell
// would for the paths the README shows that way.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, p[1:]), nil
}

// ErrConfig is wrapped by every config error (exit code 2).
var ErrConfig = errors.New("config error")

var (
	reJobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// LoadConfig reads and checks a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg, err := parseConfig(data)
	if err == nil {
		var dir string
		if dir, err = filepath.Abs(filepath.Dir(path)); err == nil {
			err = resolvePaths(cfg, dir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file: no jobs")
		}
		return nil, yamlError(err, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document; put all jobs under one jobs: list")
	}
	// A second pass over the node tree gives each job its line.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil && len(root.Content) > 0 {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "jobs" && doc.Content[i+1].Kind == yaml.SequenceNode {
				for j, item := range doc.Content[i+1].Content {
					if j < len(cfg.Jobs) {
						cfg.Jobs[j].line = item.Line
						cfg.Jobs[j].node = item
					}
				}
			}
		}
	}
	if len(cfg.Jobs) == 0 {
		return nil, errors.New("no jobs")
	}
	var names []string
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		if !reJobName.MatchString(j.Name) {
			return nil, fmt.Errorf("line %d: job %q: name must be letters, digits, '.', '_' or '-' (it names the checkpoint file)", j.line, j.Name)
		}
		if err := j.check(); err != nil {
			line := j.line
			var ke *keyError
			if errors.As(err, &ke) && lineOf(j.node, ke.key) > 0 {
				line = lineOf(j.node, ke.key)
			}
			return nil, fmt.Errorf("line %d: job %q: %v", line, j.Name, err)
		}
		if slices.Contains(names, j.Name) {
			return nil, fmt.Errorf("line %d: job name %q used twice", j.line, j.Name)
		}
		names = append(names, j.Name)
	}
	return &cfg, nil
}

// check checks a job's settings, from the file, the command line or both:
// the one place they are validated.
func (j *Job) check() error {
	for _, ep := range []struct {
		what string
		e    EndpointConfig
	}{{"source", j.Source}, {"destination", j.Destination}} {
		if ep.e.URL == "" {
			return fmt.Errorf("%s: missing", ep.what)
		}
		e, err := endpoint.Parse(ep.e.URL)
		if err != nil {
			return atKey(ep.what, fmt.Errorf("%s: %v", ep.what, err))
		}
		if !e.Server && (ep.e.PasswordFile != "" || ep.e.PasswordCmd != "" || ep.e.OAuth2TokenCmd != "" || ep.e.usesOAuth2()) {
			return atKey(ep.what, fmt.Errorf("%s: %s takes no password", ep.what, e.Scheme))
		}
	}
	if _, err := plan.ParseDedup(j.Dedup); err != nil {
		return atKey("dedup", err)
	}
	if err := checkEnums(j); err != nil {
		return err
	}
	if j.Workers < 0 {
		return atKey("workers", fmt.Errorf("%s: %d is negative", named(j, "workers"), j.Workers))
	}
	if j.FolderParallelism < 0 {
		return atKey("folder_parallelism", fmt.Errorf("%s: %d is negative", named(j, "folder_parallelism"), j.FolderParallelism))
	}
	if j.MaxDeleteFraction < 0 || j.MaxDeleteFraction > 1 {
		return atKey("max_delete_fraction", fmt.Errorf("%s: %v is not between 0 and 1", named(j, "max_delete_fraction"), j.MaxDeleteFraction))
	}
	if j.MirrorDeletes && j.DeleteAfterCopy {
		return atKey("mirror_deletes", fmt.Errorf("%s and %s together would delete the copies of what the move deleted", named(j, "mirror_deletes"), named(j, "delete_after_copy")))
	}
	if _, err := j.Limits.limits(); err != nil {
		return underKey("limits", err)
	}
	if _, err := j.Filters.filter(); err != nil {
		return underKey("filters", err)
	}
	if _, err := plan.NewFolderRules(j.Folders.rules()); err != nil {
		return atKey("folders", fmt.Errorf("folders: %v", err))
	}
	return nil
}

// check checks the run's settings once, wherever they came from.
func (c *RunSettings) check() error {
	if err := checkEnums(c); err != nil {
		return err
	}
	// A report that cannot be written is found before the run, not after.
	for _, f := range []struct{ key, path string }{{"summary_file", c.SummaryFile}, {"metrics_file", c.MetricsFile}, {"failed_file", c.FailedFile}} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Dir(f.path)); err != nil || !fi.IsDir() {
			return usagef("%s: the directory of %s does not exist", named(c, f.key), f.path)
		}
	}
	if c.Quiet && c.Verbose {
		return usagef("%s and %s ask for opposite things; give one", named(c, "quiet"), named(c, "verbose"))
	}
	if c.Parallel < 1 {
		return usagef("%s: %d is less than 1", named(c, "parallel"), c.Parallel)
	}
	if c.MaxHostConnections < 0 {
		return usagef("%s: %d is negative", named(c, "max_host_connections"), c.MaxHostConnections)
	}
	_, _, err := parseShard(c.Shard)
	return err
}

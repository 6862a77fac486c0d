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

// Config is a YAML file of jobs (see README, "Config reference").
type Config struct {
	Jobs []Job `yaml:"jobs"`
}

// Job is one copy job.
type Job struct {
	Name        string         `yaml:"name"`
	Source      EndpointConfig `yaml:"source"`
	Destination EndpointConfig `yaml:"destination"`
	Dedup       string         `yaml:"dedup"`
	Checkpoint  string         `yaml:"checkpoint"`
	Workers     int            `yaml:"workers"`
	// DeleteAfterCopy makes the job a move: see plan.Options.
	DeleteAfterCopy bool `yaml:"delete_after_copy"`
	// MirrorDeletes deletes at the destination what is gone from the
	// source (guarded: see plan.Options).
	MirrorDeletes     bool    `yaml:"mirror_deletes"`
	MaxDeleteFraction float64 `yaml:"max_delete_fraction"`
	// Limits pace the job and cap its bytes per day.
	Limits LimitsConfig `yaml:"limits"`
	// Folders and Filters choose what is copied, and where to.
	Folders FolderConfig `yaml:"folders"`
	Filters FilterConfig `yaml:"filters"`

	line int // where the job starts in the file, for errors
}

func (e EndpointConfig) usesRefreshToken() bool {
	return e.OAuth2RefreshTokenFile != "" || e.OAuth2RefreshTokenCmd != "" || e.OAuth2ClientID != ""
}

// FolderConfig is plan.FolderRules as written in a config file.
type FolderConfig struct {
	Include []string          `yaml:"include"`
	Exclude []string          `yaml:"exclude"`
	Map     map[string]string `yaml:"map"`
	Prefix  string            `yaml:"prefix"`
	// AllMail copies a Gmail source's All Mail, Important and Starred
	// folders too (left out by default: the label folders hold the same).
	AllMail bool `yaml:"all_mail"`
}

func (f FolderConfig) rules() plan.FolderRules {
	return plan.FolderRules{Include: f.Include, Exclude: f.Exclude, Map: f.Map, Prefix: f.Prefix}
}

// LimitsConfig is plan.Limits as written in a config file.
type LimitsConfig struct {
	MessagesPerSecond string `yaml:"max_messages_per_second"`
	BytesPerSecond    string `yaml:"max_bytes_per_second"`
	DailyByteBudget   string `yaml:"daily_byte_budget"`
}

func (l LimitsConfig) limits() (plan.Limits, error) {
	var out plan.Limits
	if l.MessagesPerSecond != "" {
		n, err := strconv.ParseFloat(l.MessagesPerSecond, 64)
		if err != nil || n <= 0 {
			return out, fmt.Errorf("max_messages_per_second: %q is not a positive number", l.MessagesPerSecond)
		}
		out.MessagesPerSecond = n
	}
	bps, err := parseSize("max_bytes_per_second", l.BytesPerSecond)
	if err != nil {
		return out, err
	}
	out.BytesPerSecond = float64(bps)
	if out.ByteBudget, err = parseSize("daily_byte_budget", l.DailyByteBudget); err != nil {
		return out, err
	}
	return out, nil
}

// FilterConfig is plan.Filter as written in a config file: sizes like
// "25MB", dates like "2024-01-31" (UTC) or RFC 3339.
type FilterConfig struct {
	MaxSize string `yaml:"max_size"`
	MinSize string `yaml:"min_size"`
	Since   string `yaml:"since"`
	Before  string `yaml:"before"`
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
		return 0, fmt.Errorf("%s: %q is not a size (like 25MB)", what, s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q: %v", what, s, err)
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
	return time.Time{}, fmt.Errorf("%s: %q is not a date (like 2024-01-31 or 2024-01-31T08:00:00Z)", what, s)
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
	// MaxConns caps the endpoint's connections (run --max-host-connections);
	// not in the file.
	MaxConns int `yaml:"-"`
	line     int
}

var endpointKeys = []string{"url", "provider", "user", "password_file", "password_cmd", "oauth2_token_cmd",
	"oauth2_client_id", "oauth2_client_secret_file", "oauth2_token_url", "oauth2_refresh_token_file", "oauth2_refresh_token_cmd"}

// UnmarshalYAML accepts a scalar URL or a mapping. It checks the mapping's
// keys itself: yaml.v3 does not apply KnownFields inside custom unmarshalers.
func (e *EndpointConfig) UnmarshalYAML(n *yaml.Node) error {
	e.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		e.URL = n.Value
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
			}[k.Value]
			switch {
			case field != nil:
				*field = v.Value
			default:
				return fmt.Errorf("line %d: unknown key %q (an endpoint takes: %s)", k.Line, k.Value, strings.Join(endpointKeys, ", "))
			}
		}
		for _, f := range []*string{&e.PasswordFile, &e.OAuth2ClientSecretFile, &e.OAuth2RefreshTokenFile} {
			x, err := expandHome(*f)
			if err != nil {
				return fmt.Errorf("line %d: %v", n.Line, err)
			}
			*f = x
		}
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
	reUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	reJobName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// LoadConfig reads and checks a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg, err := parseConfig(data)
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
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = reUnknownField.ReplaceAllString(msg, `unknown key "$1"`)
		return nil, errors.New(strings.TrimSpace(strings.ReplaceAll(msg, "\n  ", "; ")))
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
		if err := j.check(); err != nil {
			return nil, fmt.Errorf("line %d: job %q: %v", j.line, j.Name, err)
		}
		if slices.Contains(names, j.Name) {
			return nil, fmt.Errorf("line %d: job name %q used twice", j.line, j.Name)
		}
		names = append(names, j.Name)
	}
	return &cfg, nil
}

func (j *Job) check() error {
	if !reJobName.MatchString(j.Name) {
		return errors.New("name must be letters, digits, '.', '_' or '-' (it names the checkpoint file)")
	}
	for _, ep := range []struct {
		what string
		e    EndpointConfig
	}{{"source", j.Source}, {"destination", j.Destination}} {
		if ep.e.URL == "" {
			return fmt.Errorf("%s: missing", ep.what)
		}
		e, err := endpoint.Parse(ep.e.URL)
		if err != nil {
			return fmt.Errorf("line %d: %s: %v", ep.e.line, ep.what, err)
		}
		if !e.Server && (ep.e.PasswordFile != "" || ep.e.PasswordCmd != "" || ep.e.OAuth2TokenCmd != "" || ep.e.usesRefreshToken()) {
			return fmt.Errorf("line %d: %s: a maildir takes no password", ep.e.line, ep.what)
		}
	}
	if _, err := plan.ParseDedup(j.Dedup); err != nil {
		return err
	}
	if j.Workers < 0 {
		return fmt.Errorf("workers: %d is negative", j.Workers)
	}
	if j.MaxDeleteFraction < 0 || j.MaxDeleteFraction > 1 {
		return fmt.Errorf("max_delete_fraction: %v is not between 0 and 1", j.MaxDeleteFraction)
	}
	if j.MirrorDeletes && j.DeleteAfterCopy {
		return errors.New("mirror_deletes and delete_after_copy together would delete the copies of what the move deleted")
	}
	if _, err := j.Limits.limits(); err != nil {
		return fmt.Errorf("limits: %v", err)
	}
	if _, err := j.Filters.filter(); err != nil {
		return fmt.Errorf("filters: %v", err)
	}
	if _, err := plan.NewFolderRules(j.Folders.rules()); err != nil {
		return fmt.Errorf("folders: %v", err)
	}
	return nil
}

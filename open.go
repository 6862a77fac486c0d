package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/endpoint"
	sinkimap "github.com/mailferry/mailferry/sink/imap"
	sinkmaildir "github.com/mailferry/mailferry/sink/maildir"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	srcmbox "github.com/mailferry/mailferry/source/mbox"
	srcpop3 "github.com/mailferry/mailferry/source/pop3"
)

// errNotBuilt names an endpoint kind this build cannot open yet.
var errNotBuilt = errors.New("this kind of endpoint is not supported yet")

// side is "src" or "dst": it picks MAILFERRY_SRC_PASSWORD or
// MAILFERRY_DST_PASSWORD.
type side string

// openMaildir opens a Maildir tree for reading.
func openMaildir(path string, layout srcmaildir.Layout, log *slog.Logger) (source.Source, error) {
	st, err := srcmaildir.Open(path, layout)
	if err != nil {
		return nil, err
	}
	st.Log = log
	return st, nil
}

// openSource opens an endpoint for reading.
func openSource(ctx context.Context, e *endpoint.Endpoint, cfg EndpointConfig, log *slog.Logger) (source.Source, error) {
	switch e.Kind {
	case endpoint.Maildir:
		layout, err := srcmaildir.ParseLayout(e.Layout)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		return openMaildir(e.Path, layout, log)
	case endpoint.Mbox:
		return openMbox(e, log)
	case endpoint.IMAP:
		c, err := imapConfig(e, cfg, "src", log)
		if err != nil {
			return nil, err
		}
		return srcimap.Open(ctx, c)
	case endpoint.POP3:
		c, err := imapConfig(e, cfg, "src", log) // the same connection fields
		if err != nil {
			return nil, err
		}
		if c.TokenSource != nil { // one session: one token
			if c.Token, err = c.TokenSource(); err != nil {
				return nil, err
			}
		}
		return srcpop3.Open(ctx, srcpop3.Config{
			Addr: c.Addr, TLS: c.TLS, CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
			User: c.User, Password: c.Password, Token: c.Token, Auth: c.Auth, Folder: e.Options.Get("folder"), Timeout: c.Timeout, Log: log,
		})
	}
	return nil, fmt.Errorf("%s: %w", e.Kind, errNotBuilt)
}

// openMbox reads the options of an mbox: endpoint.
func openMbox(e *endpoint.Endpoint, log *slog.Logger) (source.Source, error) {
	o := e.Options
	opt := srcmbox.Options{Folder: o.Get("folder"), Format: o.Get("format"), Log: log}
	switch o.Get("labels") {
	case "", "on":
	case "off":
		opt.NoLabels = true
	default:
		return nil, usagef("%s: labels=%q (want on or off)", e, o.Get("labels"))
	}
	switch o.Get("expunged") {
	case "", "skip":
	case "keep":
		opt.KeepExpunged = true
	default:
		return nil, usagef("%s: expunged=%q (want skip or keep)", e, o.Get("expunged"))
	}
	s, err := srcmbox.Open(e.Path, opt)
	if errors.Is(err, srcmbox.ErrFormat) {
		return nil, usageError{err.Error()}
	}
	return s, err
}

// openDestination opens an endpoint for writing, or, in a dry run, for
// reading only (a missing Maildir is then an empty one, and is not created).
func openDestination(ctx context.Context, e *endpoint.Endpoint, cfg EndpointConfig, dryRun bool, log *slog.Logger) (source.Source, error) {
	switch e.Kind {
	case endpoint.Maildir:
		layout, err := srcmaildir.ParseLayout(e.Layout)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		if dryRun {
			if _, err := os.Stat(e.Path); errors.Is(err, fs.ErrNotExist) {
				return emptySource{}, nil
			}
			return openMaildir(e.Path, layout, log)
		}
		return sinkmaildir.New(e.Path, layout, log)
	case endpoint.IMAP:
		c, err := imapConfig(e, cfg, "dst", log)
		if err != nil {
			return nil, err
		}
		if dryRun {
			return srcimap.Open(ctx, c)
		}
		return sinkimap.Open(ctx, c)
	case endpoint.POP3:
		return nil, usagef("%s: POP3 can only be a source", e)
	case endpoint.Mbox:
		return nil, usagef("%s: mbox can only be a source (write to maildir: or imaps://)", e)
	}
	return nil, fmt.Errorf("%s: %w", e.Kind, errNotBuilt)
}

// imapConfig reads the connection fields of a server endpoint (IMAP or
// POP3: the options are the same).
func imapConfig(e *endpoint.Endpoint, cfg EndpointConfig, s side, log *slog.Logger) (srcimap.Config, error) {
	if e.User == "" {
		return srcimap.Config{}, usagef("%s: no user name: write it as imaps://USER@HOST", e)
	}
	var pass, token string
	var tokens func() (string, error)
	var err error
	if cfg.usesRefreshToken() {
		if tokens, err = tokenSource(cfg); err != nil {
			return srcimap.Config{}, usageError{fmt.Sprintf("%s: %v", e, err)}
		}
	} else if cfg.OAuth2TokenCmd != "" {
		if token, err = runSecretCmd("oauth2_token_cmd", cfg.OAuth2TokenCmd); err != nil {
			return srcimap.Config{}, err
		}
	} else if pass, err = password(e, cfg, s, log); err != nil {
		return srcimap.Config{}, err
	}
	insecure := e.Options.Get("insecure_skip_verify")
	if insecure != "" && insecure != "true" && insecure != "false" {
		return srcimap.Config{}, usagef("%s: insecure_skip_verify is true or false", e)
	}
	conns := 0
	if v := e.Options.Get("connections"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return srcimap.Config{}, usagef("%s: connections is a number from 1 to 64", e)
		}
		conns = n
	}
	if p, _ := lookupProvider(cfg.Provider); p.maxConns > 0 {
		cfg.MaxConns = min(p.maxConns, cmp.Or(cfg.MaxConns, p.maxConns))
	}
	if cfg.MaxConns > 0 {
		if conns == 0 {
			conns = srcimap.DefaultConns
		}
		conns = min(conns, cfg.MaxConns)
	}
	var timeout time.Duration
	if v := e.Options.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			return srcimap.Config{}, usagef("%s: timeout is a duration like 90s or 5m", e)
		}
		timeout = d
	}
	if insecure == "true" {
		log.Warn("TLS certificate checks are OFF (insecure_skip_verify=true): anyone on the path can read the password and mail", "server", e.Address())
	}
	return srcimap.Config{
		Addr: e.Address(), TLS: e.TLS, CAFile: e.Options.Get("ca_file"), InsecureSkipVerify: insecure == "true",
		User: e.User, Password: pass, Token: token, TokenSource: tokens, Auth: e.Options.Get("auth"), Conns: conns, Timeout: timeout, Log: log,
	}, nil
}

// password finds the password for a server endpoint, in this order:
// MAILFERRY_SRC_PASSWORD / MAILFERRY_DST_PASSWORD, password_file,
// password_cmd (run by sh, like mbsync's PassCmd), the URL (with a warning:
// it shows in ps and shell history). Its value never appears in errors.
func password(e *endpoint.Endpoint, cfg EndpointConfig, s side, log *slog.Logger) (string, error) {
	env := "MAILFERRY_" + strings.ToUpper(string(s)) + "_PASSWORD"
	from, pw := "", ""
	switch p, ok := os.LookupEnv(env); {
	case ok:
		from, pw = env, p
	case cfg.PasswordFile != "":
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		from, pw = "password_file", firstLine(string(b))
	case cfg.PasswordCmd != "":
		p, err := runSecretCmd("password_cmd", cfg.PasswordCmd)
		if err != nil {
			return "", err
		}
		from, pw = "password_cmd", p
	case e.Password != "":
		log.Warn("password taken from the URL: it shows in ps and shell history; prefer " + env + " or password_file")
		from, pw = "the URL", e.Password
	default:
		return "", usagef("no password for %s: set %s, or password_file or password_cmd in a config file", e, env)
	}
	// A line break would end the command the password is sent in and start
	// another (POP3 PASS): refused before anything is sent, naming where it
	// came from, never what it is.
	if strings.ContainsAny(pw, "\r\n\x00") {
		return "", usagef("the password from %s holds a line break or NUL", from)
	}
	if strings.ContainsAny(e.User, "\r\n\x00") {
		return "", usagef("the user name of %s holds a line break or NUL", e)
	}
	return pw, nil
}

// firstLine is a secret as pass and gopass print it: the first line; the
// lines after it (login:, url:, other secrets) are not part of it.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r")
}

// runSecretCmd runs a command that prints a secret on its first line. Its
// output never goes into an error; its standard error may, cut short, as
// it is the command's own explanation.
func runSecretCmd(what, command string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("sh", "-c", command)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return "", fmt.Errorf("%s failed: %w (%q)", what, err, msg)
	}
	secret := firstLine(out.String())
	if secret == "" {
		return "", fmt.Errorf("%s printed nothing on its first line", what)
	}
	return secret, nil
}

// emptySource is a destination that does not exist yet, for plan.
type emptySource struct{}

func (emptySource) Folders(context.Context) ([]source.Folder, error) { return nil, nil }
func (emptySource) List(_ context.Context, f string, _ func(source.Message) error) error {
	return fmt.Errorf("folder %q: %w", f, source.ErrFolderNotFound)
}
func (emptySource) Open(_ context.Context, m source.Message) (io.ReadCloser, error) {
	return nil, source.ErrMessageNotFound
}
func (emptySource) Close() error { return nil }

package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/store"
)

// side is "src" or "dst": it picks MAILFERRY_SRC_PASSWORD or
// MAILFERRY_DST_PASSWORD.
type side string

// openSource opens an endpoint for reading.
// allMail reads a Gmail source as its server lists it (the all_mail
// setting).
func openSource(ctx context.Context, e *endpoint.Endpoint, j Job, log *slog.Logger) (source.Source, error) {
	env := endpointEnv(e, j.Source, "src", log)
	env.AllMail = j.Folders.AllMail
	env.GmailKeywords = j.GmailLabels == "keywords"
	return store.OpenSource(ctx, e, env)
}

// openDestination opens an endpoint for writing, or, in a dry run, to be
// looked at only (a missing Maildir is then an empty one, and not made).
func openDestination(ctx context.Context, e *endpoint.Endpoint, cfg EndpointConfig, dryRun bool, log *slog.Logger) (sink.Sink, error) {
	return store.OpenDestination(ctx, e, endpointEnv(e, cfg, "dst", log), dryRun)
}

// endpointEnv is what a store kind opens e with: the log, the connection
// cap (the job's and the provider's), and the secret, found only when the
// kind asks for it.
func endpointEnv(e *endpoint.Endpoint, cfg EndpointConfig, s side, log *slog.Logger) store.Env {
	maxConns := cfg.MaxConns
	if p, _ := lookupProvider(cfg.Provider); p.maxConns > 0 {
		maxConns = min(p.maxConns, cmp.Or(maxConns, p.maxConns))
	}
	return store.Env{Log: log, MaxConns: maxConns, Secret: func() (store.Secret, error) {
		secretMu.Lock() // the two ends open at once: one prompt at a time
		defer secretMu.Unlock()
		return secret(e, cfg, s, log)
	}}
}

// secretMu keeps the source's and the destination's secrets from being
// asked for at once (a password prompt each on one terminal).
var secretMu sync.Mutex

// secret finds how a server endpoint logs in: an OAuth2 refresh token
// (tokens are then fetched as needed), a token command, or a password.
func secret(e *endpoint.Endpoint, cfg EndpointConfig, s side, log *slog.Logger) (store.Secret, error) {
	admin := func(tokens func() (string, error), err error) (store.Secret, error) {
		if err != nil {
			return store.Secret{}, usageError{msg: fmt.Sprintf("%s: %v", e, err)}
		}
		return store.Secret{TokenSource: tokens}, nil
	}
	switch {
	case cfg.OAuth2ServiceAccountFile != "":
		return admin(serviceAccountTokens(cfg, e.User))
	case cfg.OAuth2AppOnly:
		return admin(appOnlyTokens(cfg))
	case cfg.usesRefreshToken():
		tokens, err := tokenSource(cfg)
		if err != nil {
			return store.Secret{}, usageError{msg: fmt.Sprintf("%s: %v", e, err)}
		}
		return store.Secret{TokenSource: tokens}, nil
	case cfg.OAuth2TokenCmd != "":
		token, err := runSecretCmd("oauth2_token_cmd", cfg.OAuth2TokenCmd)
		return store.Secret{Token: token}, err
	}
	pass, err := password(e, cfg, s, log)
	return store.Secret{Password: pass}, err
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

// Package endpoint parses the URLs that name mail stores on the command line
// and in config files. It knows two shapes, and the schemes that store kinds
// register (see package store):
//
//	SCHEME:PATH[?OPTIONS]                     a local store (maildir:, mbox:)
//	SCHEME://[USER@]HOST[:PORT][?OPTIONS]     a server (imaps://, pop3://)
//
// A server scheme either speaks TLS from the first byte (imaps, pop3s) or
// requires STARTTLS, unless ?tls=none says otherwise.
package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// TLS modes.
const (
	TLSImplicit = "implicit" // imaps, pop3s
	TLSStart    = "starttls" // imap, pop3: required, never a silent fallback
	TLSNone     = "none"     // ?tls=none: plaintext, for loopback tests
)

// Endpoint is a parsed store URL.
type Endpoint struct {
	Kind   string // the store kind the scheme belongs to
	Scheme string // as registered ("imaps")
	Server bool   // a server URL, not a path
	// Local stores
	Path   string
	Layout string
	// Servers
	TLS      string
	Host     string
	Port     string
	User     string
	Password string // from the URL; callers warn that it is visible to ps
	Options  url.Values
}

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("bad endpoint")

// Parse parses s. A leading "~/" in a path is the home directory.
func Parse(s string) (*Endpoint, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" {
		return nil, fmt.Errorf("%w %q: want %s", ErrSyntax, s, examples())
	}
	sc, ok := lookup(scheme)
	if !ok {
		return nil, fmt.Errorf("%w %q: unknown scheme %q (want %s)", ErrSyntax, Redact(s), scheme, strings.Join(names(), ", "))
	}
	if sc.Server {
		return parseServer(sc, s)
	}
	return parseLocal(sc, s, rest)
}

// parseLocal parses SCHEME:PATH.
func parseLocal(sc Scheme, s, rest string) (*Endpoint, error) {
	path, query, _ := strings.Cut(rest, "?")
	path = strings.TrimPrefix(path, "//") // maildir:///abs/path
	if path == "" {
		return nil, fmt.Errorf("%w %q: no path", ErrSyntax, s)
	}
	if path == "~" || strings.HasPrefix(path, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrSyntax, s, err)
		}
		path = filepath.Join(home, path[1:])
	}
	opts, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrSyntax, s, err)
	}
	e := &Endpoint{Kind: sc.Kind, Scheme: sc.Name, Path: filepath.Clean(path), Options: opts, Layout: opts.Get("layout")}
	return e, e.checkOptions(sc, s)
}

func parseServer(sc Scheme, s string) (*Endpoint, error) {
	// The password is found and taken out before anything is parsed, so
	// no error below can quote it, whatever the URL's shape.
	masked, user, password, hasUser := splitUserinfo(s)
	scheme, rest, _ := strings.Cut(s, ":")
	scheme = strings.ToLower(scheme)
	if slashes := len(rest) - len(strings.TrimLeft(rest, "/")); slashes != 2 {
		return nil, fmt.Errorf("%w %q: want %s://USER@HOST (two slashes after %q)", ErrSyntax, masked, scheme, scheme+":")
	}
	if hasUser {
		at := strings.LastIndex(rest, "@")
		rest = "//" + rest[at+1:]
	}
	u, err := url.Parse(scheme + ":" + rest)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrSyntax, masked, errors.Unwrap(err))
	}
	e := &Endpoint{Kind: sc.Kind, Scheme: sc.Name, Server: true, Host: u.Hostname(), Port: u.Port(), Options: u.Query()}
	if u.Host == "" || e.Host == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrSyntax, masked)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w %q: unexpected path %q", ErrSyntax, masked, u.Path)
	}
	if u.Fragment != "" || strings.Contains(rest, "#") {
		return nil, fmt.Errorf("%w %q: unexpected \"#\"", ErrSyntax, masked)
	}
	if hasUser {
		e.User, e.Password = unescape(user), unescape(password)
		if e.User == "" {
			return nil, fmt.Errorf("%w %q: empty user name before \"@\"", ErrSyntax, masked)
		}
		// A line break would end the command it is sent in and start
		// another: refused before anything is sent.
		for _, f := range []struct{ name, v string }{{"user name", e.User}, {"password", e.Password}} {
			if strings.ContainsAny(f.v, "\r\n\x00") {
				return nil, fmt.Errorf("%w %q: the %s holds a line break or NUL", ErrSyntax, masked, f.name)
			}
		}
	}
	s = masked // for the errors below
	implicit := sc.ImplicitTLS
	switch {
	case implicit:
		e.TLS = TLSImplicit
	case e.Options.Get("tls") == "none":
		e.TLS = TLSNone
	default:
		e.TLS = TLSStart
	}
	if t := e.Options.Get("tls"); t != "" && (t != "none" || implicit) {
		return nil, fmt.Errorf("%w %q: tls=%q (the only value is none, with a scheme that uses STARTTLS)", ErrSyntax, Redact(s), t)
	}
	if n, err := strconv.Atoi(e.Port); e.Port != "" && (err != nil || n < 1 || n > 65535) {
		return nil, fmt.Errorf("%w %q: bad port %q", ErrSyntax, Redact(s), e.Port)
	}
	if e.Port == "" {
		e.Port = sc.Port
	}
	return e, e.checkOptions(sc, s)
}

func (e *Endpoint) checkOptions(sc Scheme, s string) error {
	for k := range e.Options {
		if !slices.Contains(sc.Options, k) {
			return fmt.Errorf("%w %q: unknown option %q (%s takes: %s)", ErrSyntax, Redact(s), k, sc.Name, strings.Join(sc.Options, ", "))
		}
	}
	return nil
}

// Address is HOST:PORT.
func (e *Endpoint) Address() string { return net.JoinHostPort(e.Host, e.Port) }

// String returns the endpoint without any password: safe for logs,
// errors and checkpoints.
func (e *Endpoint) String() string {
	if !e.Server {
		s := e.Scheme + ":" + e.Path
		if len(e.Options) > 0 {
			s += "?" + readableQuery(e.Options)
		}
		return s
	}
	u := url.URL{Scheme: e.Scheme, Host: e.Address()}
	if e.User != "" {
		u.User = url.User(e.User)
	}
	u.RawQuery = readableQuery(e.Options)
	return u.String()
}

// readableQuery encodes options as a user would type them: a path stays
// /etc/ssl/ca.pem, not %2Fetc%2Fssl%2Fca.pem; the result parses back to
// the same values.
func readableQuery(v url.Values) string {
	return queryUnescaper.Replace(v.Encode())
}

var queryUnescaper = strings.NewReplacer("%2F", "/", "%3A", ":", "%40", "@", "%2C", ",", "%7E", "~")

// Redact removes a password from a URL-like string that may not parse.
func Redact(s string) string {
	masked, _, _, _ := splitUserinfo(s)
	return masked
}

// splitUserinfo finds the user and password of a server URL however it is
// typed: the user information runs from after the scheme's slashes (any
// number, none included: "imaps:/alice:pw@h", "imaps:alice:pw@h") to the
// last "@", and the password from its first ":". A password may hold any
// of "/ ? # @ :". masked is s with the password replaced by "xxxxx" and
// everything else as typed, so a typo stays visible. A string with "@"
// but no scheme we know is masked from its first ":" to that "@".
func splitUserinfo(s string) (masked, user, password string, ok bool) {
	scheme, rest, found := strings.Cut(s, ":")
	at := strings.LastIndex(rest, "@")
	if !found || at < 0 {
		return s, "", "", false
	}
	if sc, ok := lookup(scheme); !ok || !sc.Server {
		return scheme + ":xxxxx" + rest[at:], "", "", false
	}
	start := len(rest) - len(strings.TrimLeft(rest, "/"))
	if start > at {
		return s, "", "", false
	}
	user, password, hasPassword := strings.Cut(rest[start:at], ":")
	if !hasPassword {
		return s, user, "", true
	}
	return scheme + ":" + rest[:start] + user + ":xxxxx" + rest[at:], user, password, true
}

// unescape undoes percent-encoding in a user name or password, where there
// is any; a "%" that starts no escape is kept as it is.
func unescape(v string) string {
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

package main

import (
	"fmt"
	"net/url"
	"strings"
)

// provider is what mailferry knows of a mail provider: where its IMAP
// server and OAuth2 endpoints are, and its limits.
type provider struct {
	name      string
	imapHost  string
	tokenURL  string
	deviceURL string
	// authURL is where the browser signs in (the installed-app flow);
	// loopback makes it the default flow of oauth login, as the provider
	// asks of command-line tools.
	authURL  string
	loopback bool
	scopes   []string
	// maxConns is the provider's cap on simultaneous IMAP connections.
	maxConns int
	// download and upload are the bytes a day the provider lets IMAP
	// read and write; a run stops cleanly there unless told otherwise
	// (daily_byte_budget), before the provider locks the account.
	download, upload int64
}

var providers = map[string]provider{
	"gmail": {
		name: "gmail", imapHost: "imap.gmail.com",
		tokenURL: "https://oauth2.googleapis.com/token", deviceURL: "https://oauth2.googleapis.com/device/code",
		authURL: "https://accounts.google.com/o/oauth2/v2/auth", loopback: true,
		scopes: []string{"https://mail.google.com/"}, maxConns: 15,
		// https://support.google.com/a/answer/1071518: 2,500 MB of IMAP
		// download and 500 MB of upload a day.
		download: 2500 << 20, upload: 500 << 20,
	},
	"office365": {
		name: "office365", imapHost: "outlook.office365.com",
		tokenURL:  "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		authURL:   "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		deviceURL: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
		scopes:    []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"},
		maxConns:  8,
	},
}

func init() {
	providers["google"] = providers["gmail"]
	providers["microsoft"] = providers["office365"]
}

func lookupProvider(name string) (provider, error) {
	if name == "" {
		return provider{}, nil
	}
	p, ok := providers[strings.ToLower(name)]
	if !ok {
		return p, fmt.Errorf("provider %q: want gmail or office365", name)
	}
	return p, nil
}

// endpointArg is the endpoint a URL names. A provider's name as the scheme
// is a shortcut: "gmail:alice@example.com" is the provider's IMAP server
// over TLS with alice@example.com as the user, and the provider's preset
// (its connection cap, its OAuth2 endpoints), as a config file's
// "provider: gmail" with "user:". Options after "?" are the URL's.
func endpointArg(s string) EndpointConfig {
	e := EndpointConfig{URL: s}
	e.shortcut()
	return e
}

// shortcut expands a "PROVIDER:USER" URL in place; any other is left as
// it is, for the endpoint parser to judge.
func (e *EndpointConfig) shortcut() {
	name, rest, ok := strings.Cut(e.URL, ":")
	p, known := providers[strings.ToLower(name)]
	if !ok || !known || strings.HasPrefix(rest, "//") || (e.Provider != "" && !strings.EqualFold(e.Provider, name)) {
		return
	}
	user, opts, _ := strings.Cut(rest, "?")
	if user == "" {
		return // "gmail:" alone: the parser names what is missing
	}
	e.Provider, e.User = p.name, user
	e.URL = "imaps://" + url.PathEscape(user) + "@" + p.imapHost
	if opts != "" {
		e.URL += "?" + opts
	}
}

// presetBudget is the daily byte budget the providers of a job's two ends
// ask for: the smaller of the source's download and the destination's
// upload allowance; 0 when neither has one.
func presetBudget(src, dst EndpointConfig) (int64, string) {
	var budget int64
	var why string
	if p, _ := lookupProvider(src.Provider); p.download > 0 {
		budget, why = p.download, p.name+"'s daily IMAP download allowance"
	}
	if p, _ := lookupProvider(dst.Provider); p.upload > 0 && (budget == 0 || p.upload < budget) {
		budget, why = p.upload, p.name+"'s daily IMAP upload allowance"
	}
	return budget, why
}

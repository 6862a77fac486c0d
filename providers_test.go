package main

import (
	"testing"

	"github.com/mailferry/mailferry/internal/endpoint"
)

// "gmail:USER" and "office365:USER" name the provider's server with its
// preset, on the command line and in a config file alike; anything else
// is left for the endpoint parser.
func TestProviderShortcut(t *testing.T) {
	for _, tt := range []struct {
		in, url, provider, user string
		maxConns                int
	}{
		{"gmail:alice@example.com", "imaps://alice@example.com@imap.gmail.com", "gmail", "alice@example.com", 15},
		{"GMAIL:alice@example.com?timeout=5m", "imaps://alice@example.com@imap.gmail.com?timeout=5m", "gmail", "alice@example.com", 15},
		{"google:bob@example.org", "imaps://bob@example.org@imap.gmail.com", "gmail", "bob@example.org", 15},
		{"office365:carol@contoso.com", "imaps://carol@contoso.com@outlook.office365.com", "office365", "carol@contoso.com", 8},
		{"imaps://alice@imap.gmail.com", "imaps://alice@imap.gmail.com", "", "", 0},
		{"maildir:gmail:odd", "maildir:gmail:odd", "", "", 0},
		{"gmail:", "gmail:", "", "", 0},
	} {
		e := endpointArg(tt.in)
		if e.URL != tt.url || e.Provider != tt.provider || e.User != tt.user {
			t.Errorf("endpointArg(%q) = %q, provider %q, user %q; want %q, %q, %q", tt.in, e.URL, e.Provider, e.User, tt.url, tt.provider, tt.user)
			continue
		}
		ep, err := endpoint.Parse(e.URL)
		if tt.provider == "" {
			continue
		}
		if err != nil || ep.TLS != endpoint.TLSImplicit || ep.User != tt.user || ep.Port != "993" {
			t.Errorf("%q parses as %+v, %v", tt.in, ep, err)
			continue
		}
		if env := endpointEnv(ep, e, "src", nil); env.MaxConns != tt.maxConns {
			t.Errorf("%q: %d connections at most, want the preset's %d", tt.in, env.MaxConns, tt.maxConns)
		}
	}
	cfg, err := parseConfig([]byte("jobs:\n  - name: a\n    source: gmail:alice@example.com\n    destination: {url: 'office365:bob@contoso.com', password_file: /dev/null}\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jobs[0]
	if j.Source.Provider != "gmail" || j.Source.URL != "imaps://alice@example.com@imap.gmail.com" ||
		j.Destination.Provider != "office365" || j.Destination.User != "bob@contoso.com" {
		t.Errorf("config: source %+v, destination %+v", j.Source, j.Destination)
	}
	// The shortcut says which provider; a map that says another is refused
	// by the parser as an unknown scheme, not quietly taken as either.
	if _, err := parseConfig([]byte("jobs:\n  - name: a\n    source: {url: 'gmail:a@b.c', provider: office365}\n    destination: maildir:/x\n")); err == nil {
		t.Error("gmail: URL with provider office365 accepted")
	}
}

// A job with Gmail at either end stops at Gmail's daily allowance unless
// its own budget says otherwise; "none" lifts every budget.
func TestPresetBudget(t *testing.T) {
	gmail, o365, plain := EndpointConfig{Provider: "gmail"}, EndpointConfig{Provider: "office365"}, EndpointConfig{}
	for _, tt := range []struct {
		src, dst EndpointConfig
		want     int64
	}{
		{gmail, plain, 2500 << 20},
		{plain, gmail, 500 << 20},
		{gmail, gmail, 500 << 20},
		{o365, plain, 0},
		{plain, plain, 0},
	} {
		if got, why := presetBudget(tt.src, tt.dst); got != tt.want || (got > 0) != (why != "") {
			t.Errorf("presetBudget(%q, %q) = %d (%q), want %d", tt.src.Provider, tt.dst.Provider, got, why, tt.want)
		}
	}
	for in, want := range map[string]int64{"none": 0, "NONE": 0, "1GB": 1 << 30, "": 0} {
		l, err := LimitsConfig{DailyByteBudget: in}.limits()
		if err != nil || l.ByteBudget != want {
			t.Errorf("daily_byte_budget %q = %d, %v; want %d", in, l.ByteBudget, err, want)
		}
	}
}

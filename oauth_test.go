package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/testnet"
)

// fakeOAuth is a token endpoint with a device authorization endpoint: the
// device grant answers "authorization_pending" once, then issues refresh
// token rt-1; the refresh grant issues access tokens that live expiresIn.
type fakeOAuth struct {
	*httptest.Server
	mu        sync.Mutex
	expiresIn int
	issued    map[string]time.Time // access token -> expiry
	refreshes int
	polls     int
	revoked   bool
}

func newFakeOAuth(t *testing.T, expiresIn int) *fakeOAuth {
	f := &fakeOAuth{expiresIn: expiresIn, issued: map[string]time.Time{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		reply := func(code int, v any) {
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(v)
		}
		if r.Form.Get("client_id") != "cid" {
			reply(401, map[string]string{"error": "invalid_client"})
			return
		}
		switch {
		case r.URL.Path == "/device":
			reply(200, map[string]any{"device_code": "dc-1", "user_code": "WDJB-MJHT", "verification_uri": "https://example.com/device", "interval": 1, "expires_in": 60})
		case r.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
			if f.polls++; f.polls == 1 {
				reply(400, map[string]string{"error": "authorization_pending"})
				return
			}
			reply(200, map[string]any{"access_token": "at-device", "refresh_token": "rt-1", "token_type": "Bearer", "expires_in": 3600})
		case r.Form.Get("grant_type") == "refresh_token":
			if r.Form.Get("refresh_token") != "rt-1" || f.revoked {
				reply(400, map[string]string{"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
				return
			}
			f.refreshes++
			tok := fmt.Sprintf("at-%d", f.refreshes)
			f.issued[tok] = time.Now().Add(time.Duration(f.expiresIn) * time.Second)
			reply(200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": f.expiresIn})
		default:
			reply(400, map[string]string{"error": "unsupported_grant_type"})
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOAuth) valid(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.issued[tok]
	return ok && time.Now().Before(exp)
}

// bearerSession is a memserver session that logs in with OAUTHBEARER
// only, accepting tokens the fake endpoint issued and that are still valid.
type bearerSession struct {
	imapserver.Session
	oauth  *fakeOAuth
	logins *int
	mu     *sync.Mutex
}

func (s *bearerSession) AuthenticateMechanisms() []string { return []string{"OAUTHBEARER"} }

func (s *bearerSession) Authenticate(mech string) (sasl.Server, error) {
	return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		if !s.oauth.valid(o.Token) {
			return &sasl.OAuthBearerError{Status: "invalid_token"}
		}
		s.mu.Lock()
		*s.logins++
		s.mu.Unlock()
		if err := s.Session.Login(o.Username, "secret"); err != nil {
			return &sasl.OAuthBearerError{Status: "invalid_token"}
		}
		return nil
	}), nil
}

// The device flow stores a refresh token (0600); with it in the config,
// mailferry gets access tokens itself and logs in with OAUTHBEARER.
func TestOAuth2RefreshToken(t *testing.T) {
	oauth := newFakeOAuth(t, 3600)
	dir := t.TempDir()
	rt := filepath.Join(dir, "alice.token")

	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"oauth", "login", "--client-id", "cid", "--token-url", oauth.URL + "/token", "--device-url", oauth.URL + "/device", "--out", rt}, &out, &errb)
	if code != exitOK || !strings.Contains(errb.String(), "WDJB-MJHT") || !strings.Contains(errb.String(), "https://example.com/device") {
		t.Fatalf("oauth login: exit %d\n%s", code, errb.String())
	}
	if b, _ := os.ReadFile(rt); string(b) != "rt-1\n" {
		t.Fatalf("refresh token file: %q", b)
	}
	if fi, _ := os.Stat(rt); fi.Mode().Perm() != 0o600 {
		t.Fatalf("refresh token file mode %v", fi.Mode().Perm())
	}

	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice@example.com", "secret")
	u.Create("INBOX", nil)
	for i := range 3 {
		body := fmt.Sprintf("Message-ID: <%d@oauth.test>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
		if _, err := u.Append("INBOX", bytes.NewReader([]byte(body)), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	logins := 0
	var mu sync.Mutex
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &bearerSession{Session: mem.NewSession(), oauth: oauth, logins: &logins, mu: &mu}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.AuthCap("OAUTHBEARER"): {}},
		InsecureAuth: true,
	})
	ln := testnet.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cfg := filepath.Join(dir, "job.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`jobs:
  - name: alice
    source:
      url: imap://alice%%40example.com@%s?tls=none
      oauth2_client_id: cid
      oauth2_token_url: %s/token
      oauth2_refresh_token_file: %s
    destination: maildir:%s
`, ln.Addr(), oauth.URL, rt, filepath.Join(dir, "backup"))), 0o600)
	code, stdout, stderr := cli(t, "run", cfg, "--checkpoint", filepath.Join(dir, "c"), "--json", "--verbose")
	if code != exitOK || !strings.Contains(stdout, `"copied": 3`) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if logins == 0 || oauth.refreshes != 1 {
		t.Fatalf("%d OAUTHBEARER logins, %d refreshes; want some, 1", logins, oauth.refreshes)
	}
	for _, secret := range []string{"rt-1", "at-1"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Fatalf("a token is in the output: %s", secret)
		}
	}

	// A revoked refresh token: the run fails with the provider's words,
	// and the token is nowhere in them.
	oauth.mu.Lock()
	oauth.revoked = true
	oauth.mu.Unlock()
	code, _, stderr = cli(t, "run", cfg, "--checkpoint", filepath.Join(dir, "c"))
	if code != exitFailed || !strings.Contains(stderr, "invalid_grant") || strings.Contains(stderr, "rt-1") {
		t.Fatalf("revoked: exit %d\n%s", code, stderr)
	}
}

// Access tokens are reused while valid and refreshed a minute before they
// expire: each new connection of a long run logs in with a valid one.
func TestOAuth2TokenRefresh(t *testing.T) {
	for _, tt := range []struct {
		expiresIn, refreshes int
	}{{3600, 1}, {30, 3}} {
		oauth := newFakeOAuth(t, tt.expiresIn)
		rt := filepath.Join(t.TempDir(), "rt")
		os.WriteFile(rt, []byte("rt-1\n"), 0o600)
		ts, err := tokenSource(EndpointConfig{OAuth2ClientID: "cid", OAuth2TokenURL: oauth.URL + "/token", OAuth2RefreshTokenFile: rt})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			tok, err := ts()
			if err != nil || !oauth.valid(tok) {
				t.Fatalf("token %q, %v", tok, err)
			}
		}
		if oauth.refreshes != tt.refreshes {
			t.Errorf("tokens living %d s: %d refreshes for 3 connections, want %d", tt.expiresIn, oauth.refreshes, tt.refreshes)
		}
	}
}

// Provider presets: the IMAP server from the address, the OAuth2
// endpoints, and the checks.
func TestProviderPresets(t *testing.T) {
	cfg, err := parseConfig([]byte(`jobs:
  - name: from-gmail
    source: {provider: gmail, user: alice@gmail.com, oauth2_client_id: x, oauth2_refresh_token_file: /dev/null}
    destination: maildir:/tmp/x
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Jobs[0].Source.URL; got != "imaps://alice@gmail.com@imap.gmail.com" {
		t.Errorf("gmail URL %q", got)
	}
	c, err := oauthConfig(EndpointConfig{Provider: "office365", OAuth2ClientID: "x"})
	if err != nil || !strings.Contains(c.Endpoint.TokenURL, "login.microsoftonline.com") || !strings.Contains(strings.Join(c.Scopes, " "), "offline_access") {
		t.Errorf("office365 OAuth2 config %+v, %v", c, err)
	}
	for _, bad := range []string{
		"jobs:\n  - name: a\n    source: {provider: yahoo, user: a}\n    destination: maildir:/x\n",
		"jobs:\n  - name: a\n    source: {provider: gmail}\n    destination: maildir:/x\n",
		"jobs:\n  - name: a\n    source: maildir:/x\n    destination: {url: 'maildir:/y', oauth2_client_id: c}\n",
	} {
		if _, err := parseConfig([]byte(bad)); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

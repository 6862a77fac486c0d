package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeGoogle is an authorization server as Google's installed-app flow
// documents it (developers.google.com/identity/protocols/oauth2/native-app):
// the authorization endpoint takes client_id, a loopback redirect_uri,
// response_type=code, scope, state and a PKCE S256 code_challenge, and
// redirects the browser to redirect_uri with code and state; the token
// endpoint exchanges the code for tokens only with the code_verifier
// whose SHA-256 is the challenge, and the same redirect_uri.
type fakeGoogle struct {
	*httptest.Server
	t         *testing.T
	mu        sync.Mutex
	challenge string
	redirect  string
	authQuery url.Values
	refuse    string // an error the authorization endpoint answers with
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	f := &fakeGoogle{t: t}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.URL.Path {
		case "/auth":
			q := r.URL.Query()
			f.authQuery = q
			ru, err := url.Parse(q.Get("redirect_uri"))
			if err != nil || ru.Scheme != "http" || ru.Hostname() != "127.0.0.1" || ru.Port() == "" {
				http.Error(w, "redirect_uri must be a loopback IP address", http.StatusBadRequest)
				return
			}
			if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
				http.Error(w, "invalid_request", http.StatusBadRequest)
				return
			}
			f.challenge, f.redirect = q.Get("code_challenge"), q.Get("redirect_uri")
			back := url.Values{"state": {q.Get("state")}}
			if f.refuse != "" {
				back.Set("error", f.refuse)
			} else {
				back.Set("code", "4/code-1")
			}
			http.Redirect(w, r, f.redirect+"?"+back.Encode(), http.StatusFound)
		case "/token":
			r.ParseForm()
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			if r.Form.Get("grant_type") != "authorization_code" || r.Form.Get("code") != "4/code-1" ||
				r.Form.Get("redirect_uri") != f.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != f.challenge {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant","error_description":"Bad code or code_verifier"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "ya29.at", "refresh_token": "1//rt-google", "expires_in": 3599, "token_type": "Bearer"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// browser follows the authorization URL as a browser would, redirect to
// mailferry's listener included.
func browser(t *testing.T) func(string) error {
	return func(u string) error {
		go func() {
			resp, err := http.Get(u)
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			resp.Body.Close()
		}()
		return nil
	}
}

func TestOAuthLoginBrowserFlow(t *testing.T) {
	g := newFakeGoogle(t)
	out := filepath.Join(t.TempDir(), "alice.token")
	cfg := EndpointConfig{Provider: "gmail", OAuth2ClientID: "cid.apps.googleusercontent.com", OAuth2TokenURL: g.URL + "/token"}
	var stderr bytes.Buffer
	code, err := oauthLogin(t.Context(), cfg, loginOptions{out: out, authURL: g.URL + "/auth", browse: browser(t)}, &stderr)
	if code != exitOK || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "1//rt-google\n" {
		t.Errorf("refresh token file: %q", b)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	q := g.authQuery
	if q.Get("scope") != "https://mail.google.com/" || q.Get("access_type") != "offline" || q.Get("client_id") != cfg.OAuth2ClientID {
		t.Errorf("authorization request: %v", q)
	}
	if strings.Contains(stderr.String(), "1//rt-google") || strings.Contains(stderr.String(), "ya29.at") {
		t.Error("a token is in the output")
	}

	// The provider refuses (the user clicked "Cancel"): its words, exit 1.
	g.mu.Lock()
	g.refuse = "access_denied"
	g.mu.Unlock()
	code, err = oauthLogin(t.Context(), cfg, loginOptions{out: out + "2", authURL: g.URL + "/auth", browse: browser(t)}, &stderr)
	if code != exitFailed || err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("refused: exit %d, %v", code, err)
	}
}

// TestOAuthLoginForgedRedirect: a request to the listener without the
// login's state is refused and the wait goes on; the real answer still
// completes the login.
func TestOAuthLoginForgedRedirect(t *testing.T) {
	g := newFakeGoogle(t)
	out := filepath.Join(t.TempDir(), "t")
	cfg := EndpointConfig{Provider: "gmail", OAuth2ClientID: "cid", OAuth2TokenURL: g.URL + "/token"}
	forgedStatus := make(chan int, 1)
	browse := func(u string) error {
		au, _ := url.Parse(u)
		redirect := au.Query().Get("redirect_uri")
		go func() {
			resp, err := http.Get(redirect + "?code=evil&state=guess")
			if err != nil {
				forgedStatus <- 0
				return
			}
			resp.Body.Close()
			forgedStatus <- resp.StatusCode
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	var stderr bytes.Buffer
	code, err := oauthLogin(t.Context(), cfg, loginOptions{out: out, authURL: g.URL + "/auth", browse: browse}, &stderr)
	if code != exitOK || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	if s := <-forgedStatus; s != http.StatusBadRequest {
		t.Errorf("forged redirect answered %d, want 400", s)
	}
}

func TestOAuthLoginGmailDeviceRefused(t *testing.T) {
	code, _, stderr := cli(t, "oauth", "login", "--provider", "gmail", "--client-id", "cid", "--device", "--out", filepath.Join(t.TempDir(), "t"))
	if code != exitUsage || !strings.Contains(stderr, "device flow does not allow the mail scope") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

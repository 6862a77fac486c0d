package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
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

// adminTokens is a token endpoint for the two admin grants. A JWT bearer
// assertion (Google service account) must be signed by key, issued by
// the service account, for the mail scope, addressed to the endpoint;
// the token it gets is "sa:SUB". A client credentials request (Microsoft
// app-only) must carry the client's ID and secret and the .default scope;
// its token is "app". Anything else is refused as the providers do.
type adminTokens struct {
	*httptest.Server
	key *rsa.PrivateKey
	// certKey and certDER are an app's certificate credential: a client
	// assertion must be signed by certKey and name certDER's thumbprint.
	certKey *rsa.PrivateKey
	certDER []byte
	mu      sync.Mutex
	issued  map[string]int // token: times issued
}

func newAdminTokens(t *testing.T) *adminTokens {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailferry migration app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		t.Fatal(err)
	}
	a := &adminTokens{key: key, certKey: certKey, certDER: certDER, issued: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		reply := func(code int, v any) {
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(v)
		}
		var tok string
		switch r.Form.Get("grant_type") {
		case "urn:ietf:params:oauth:grant-type:jwt-bearer":
			sub, err := a.checkJWT(r.Form.Get("assertion"), "http://"+r.Host+r.URL.Path)
			if err != nil {
				reply(400, map[string]string{"error": "invalid_grant", "error_description": err.Error()})
				return
			}
			tok = "sa:" + sub
		case "client_credentials":
			if r.Form.Get("client_assertion_type") != "" {
				if err := a.checkAssertion(r.Form.Get("client_assertion_type"), r.Form.Get("client_assertion"), "http://"+r.Host+r.URL.Path); err != nil || r.Form.Get("client_secret") != "" {
					reply(401, map[string]string{"error": "invalid_client", "error_description": fmt.Sprintf("AADSTS700027: Client assertion failed signature validation (%v).", err)})
					return
				}
			} else if r.Form.Get("client_id") != "app-id" || r.Form.Get("client_secret") != "app-secret" {
				reply(401, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
				return
			}
			if r.Form.Get("scope") != office365AppScope {
				reply(400, map[string]string{"error": "invalid_scope"})
				return
			}
			tok = "app"
		default:
			reply(400, map[string]string{"error": "unsupported_grant_type"})
			return
		}
		a.mu.Lock()
		a.issued[tok]++
		a.mu.Unlock()
		reply(200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(a.Close)
	return a
}

// checkJWT verifies an RS256 assertion and returns its subject.
func (a *adminTokens) checkJWT(assertion, aud string) (string, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return "", fmt.Errorf("Invalid JWT Signature.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct{ Iss, Sub, Scope, Aud string }
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	switch {
	case c.Iss != "migrator@project.iam.gserviceaccount.com":
		return "", fmt.Errorf("iss %q", c.Iss)
	case c.Scope != googleMailScope:
		return "", fmt.Errorf("scope %q", c.Scope)
	case c.Aud != aud:
		return "", fmt.Errorf("aud %q, want %q", c.Aud, aud)
	case c.Sub == "":
		return "", fmt.Errorf("no sub: not on behalf of a mailbox")
	}
	return c.Sub, nil
}

// checkAssertion verifies a client assertion as Microsoft's token endpoint
// does: signed with the certificate's key (RS256), naming its thumbprint
// (x5t), issued by and about the client, for this endpoint, not expired.
func (a *adminTokens) checkAssertion(typ, assertion, aud string) error {
	if typ != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fmt.Errorf("client_assertion_type %q", typ)
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&a.certKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature")
	}
	var h struct{ Alg, X5t string }
	var c struct {
		Aud, Iss, Sub, Jti string
		Exp                int64
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return fmt.Errorf("not JSON")
	}
	thumb := sha1.Sum(a.certDER)
	switch {
	case h.Alg != "RS256" || h.X5t != base64.RawURLEncoding.EncodeToString(thumb[:]):
		return fmt.Errorf("header %+v", h)
	case c.Aud != aud || c.Iss != "app-id" || c.Sub != "app-id" || c.Jti == "":
		return fmt.Errorf("claims %+v", c)
	case c.Exp < time.Now().Unix():
		return fmt.Errorf("expired")
	}
	return nil
}

// adminIMAP is an IMAP server with one message for each of users, logging
// in with XOAUTH2 or OAUTHBEARER: token "sa:USER" or "app" opens USER's
// mailbox.
type adminSession struct{ imapserver.Session }

func (s *adminSession) AuthenticateMechanisms() []string { return []string{"OAUTHBEARER"} }

func (s *adminSession) Authenticate(string) (sasl.Server, error) {
	return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		if o.Token != "sa:"+o.Username && o.Token != "app" {
			return &sasl.OAuthBearerError{Status: "invalid_token"}
		}
		if err := s.Session.Login(o.Username, "secret"); err != nil {
			return &sasl.OAuthBearerError{Status: "invalid_token"}
		}
		return nil
	}), nil
}

func adminIMAP(t *testing.T, users ...string) string {
	mem := imapmemserver.New()
	for _, name := range users {
		u := imapmemserver.NewUser(name, "secret")
		u.Create("INBOX", nil)
		body := "Message-ID: <" + name + ">\r\nSubject: for " + name + "\r\n\r\nbody\r\n"
		if _, err := u.Append("INBOX", bytes.NewReader([]byte(body)), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		mem.AddUser(u)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &adminSession{mem.NewSession()}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.AuthCap("OAUTHBEARER"): {}},
		InsecureAuth: true,
	})
	ln := testnet.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// One admin credential backs up every mailbox of a batch: a Google
// service account (a signed JWT per mailbox, sub = the mailbox) and
// Microsoft 365 app-only access (one client credentials token, the
// mailbox named in the SASL exchange). Wrong credentials fail with the
// provider's words and no secret in the output.
func TestAdminCredentials(t *testing.T) {
	tokens := newAdminTokens(t)
	users := []string{"alice@example.com", "bob@example.com"}
	addr := adminIMAP(t, users...)
	dir := t.TempDir()

	der, err := x509.MarshalPKCS8PrivateKey(tokens.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyFile := filepath.Join(dir, "sa.json")
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "migrator@project.iam.gserviceaccount.com",
		"private_key": keyPEM, "private_key_id": "k1", "token_uri": tokens.URL + "/token"})
	os.WriteFile(keyFile, sa, 0o600)
	secretFile := filepath.Join(dir, "app.secret")
	os.WriteFile(secretFile, []byte("app-secret\n"), 0o600)
	certFile := filepath.Join(dir, "app.pem")
	certKeyDER, _ := x509.MarshalPKCS8PrivateKey(tokens.certKey)
	os.WriteFile(certFile, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tokens.certDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: certKeyDER})...), 0o600)

	jobs := func(source string) string {
		var b strings.Builder
		b.WriteString("jobs:\n")
		for i, u := range users {
			fmt.Fprintf(&b, "  - name: u%d-%d\n    source:\n      url: imap://%s@%s?tls=none\n%s    destination: maildir:%s\n",
				i, len(source), strings.ReplaceAll(u, "@", "%40"), addr, source, filepath.Join(dir, fmt.Sprint(len(source)), u))
		}
		return b.String()
	}
	for _, tt := range []struct {
		name, source string
		token        string
		times        int
	}{
		{"Google service account", "      oauth2_service_account_file: " + keyFile + "\n", "sa:bob@example.com", 1},
		{"Microsoft 365 app-only", "      oauth2_app_only: true\n      oauth2_client_id: app-id\n      oauth2_client_secret_file: " + secretFile +
			"\n      oauth2_token_url: " + tokens.URL + "/tenant/oauth2/v2.0/token\n", "app", 2},
		{"Microsoft 365 app-only, certificate", "      oauth2_app_only: true\n      oauth2_client_id: app-id\n      oauth2_client_certificate_file: " + certFile +
			"\n      oauth2_token_url: " + tokens.URL + "/tenant/oauth2/v2.0/token\n", "app", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "jobs.yaml")
			os.WriteFile(cfg, []byte(jobs(tt.source)), 0o600)
			code, stdout, stderr := cli(t, "run", cfg, "--quiet")
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			for _, u := range users {
				got, _ := filepath.Glob(filepath.Join(dir, fmt.Sprint(len(tt.source)), u, "cur", "*"))
				if len(got) != 1 {
					t.Errorf("%s: %d messages backed up, want 1", u, len(got))
				}
			}
			tokens.mu.Lock()
			n := tokens.issued[tt.token]
			tokens.mu.Unlock()
			if n != tt.times {
				t.Errorf("token %q issued %d times, want %d (one per mailbox for a service account, one per job for app-only)", tt.token, n, tt.times)
			}
			if strings.Contains(stdout+stderr, "PRIVATE KEY") || strings.Contains(stdout+stderr, "app-secret") {
				t.Errorf("a secret is in the output")
			}
		})
	}

	// Another key, or a wrong secret: refused, in the provider's words.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ = x509.MarshalPKCS8PrivateKey(other)
	sa, _ = json.Marshal(map[string]string{"type": "service_account", "client_email": "migrator@project.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": tokens.URL + "/token"})
	os.WriteFile(keyFile, sa, 0o600)
	os.WriteFile(secretFile, []byte("wrong-secret\n"), 0o600)
	for _, tt := range []struct{ source, words string }{
		{"      oauth2_service_account_file: " + keyFile + "\n", "Invalid JWT Signature"},
		{"      oauth2_app_only: true\n      oauth2_client_id: app-id\n      oauth2_client_secret_file: " + secretFile +
			"\n      oauth2_token_url: " + tokens.URL + "/t/token\n", "AADSTS7000215"},
	} {
		cfg := filepath.Join(dir, "bad.yaml")
		os.WriteFile(cfg, []byte(jobs(tt.source)), 0o600)
		code, _, stderr := cli(t, "run", cfg)
		if code == exitOK || !strings.Contains(stderr, tt.words) || strings.Contains(stderr, "wrong-secret") || strings.Contains(stderr, "PRIVATE KEY") {
			t.Errorf("bad credential: exit %d\n%s", code, stderr)
		}
	}

	// Mistakes in the config are named before anything is sent.
	for _, tt := range []struct{ source, words string }{
		{"      oauth2_app_only: true\n      oauth2_client_id: app-id\n      oauth2_client_secret_file: " + secretFile + "\n", "oauth2_tenant"},
		{"      oauth2_app_only: yes please\n", "oauth2_app_only"},
		{"      oauth2_service_account_file: " + secretFile + "\n", "not a service account key"},
	} {
		cfg := filepath.Join(dir, "mistake.yaml")
		os.WriteFile(cfg, []byte(jobs(tt.source)), 0o600)
		if code, _, stderr := cli(t, "run", cfg); code == exitOK || !strings.Contains(stderr, tt.words) {
			t.Errorf("%q: exit %d\n%s", tt.words, code, stderr)
		}
	}
}

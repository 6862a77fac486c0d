package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// An administrator moving an organisation's mailboxes has one credential
// for all of them, not each user's consent. Two kinds, both from
// golang.org/x/oauth2 (the library of the field, already used for
// refresh tokens):
//   - Google Workspace: a service account with domain-wide delegation.
//     Its key file signs a JWT asking for the mail scope on behalf of the
//     mailbox (sub), exchanged at the token endpoint (RFC 7523).
//   - Microsoft 365: app-only access. The application's own credentials
//     get a token for https://outlook.office365.com/.default (the client
//     credentials grant, RFC 6749 §4.4); the mailbox is the user named in
//     the SASL exchange.

// googleMailScope is what a service account asks for: all of Gmail over
// IMAP.
const googleMailScope = "https://mail.google.com/"

// office365AppScope is the scope of app-only IMAP access.
const office365AppScope = "https://outlook.office365.com/.default"

// usesOAuth2 reports whether the endpoint gets its tokens itself, by any
// grant.
func (e EndpointConfig) usesOAuth2() bool {
	return e.usesRefreshToken() || e.OAuth2ServiceAccountFile != "" || e.OAuth2AppOnly
}

// serviceAccountKey is the part of a Google service account key file
// (JSON, as the Cloud console downloads it) that signs the JWT.
type serviceAccountKey struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// serviceAccountTokens gives access tokens for the mailbox user from a
// service account key file.
func serviceAccountTokens(cfg EndpointConfig, user string) (func() (string, error), error) {
	b, err := os.ReadFile(cfg.OAuth2ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("oauth2_service_account_file: %w", err)
	}
	var k serviceAccountKey
	if err := json.Unmarshal(b, &k); err != nil {
		// The file holds a private key: json's error quotes no part of it.
		return nil, fmt.Errorf("oauth2_service_account_file: not a service account key (JSON): %w", err)
	}
	if k.Type != "service_account" || k.ClientEmail == "" || k.PrivateKey == "" {
		return nil, errors.New(`oauth2_service_account_file: not a service account key: want "type": "service_account" with client_email and private_key`)
	}
	if user == "" {
		return nil, errors.New("a service account logs in on behalf of a mailbox: name it as the user (user: or the URL's USER@)")
	}
	conf := &jwt.Config{
		Email: k.ClientEmail, PrivateKey: []byte(k.PrivateKey), PrivateKeyID: k.PrivateKeyID,
		Scopes: []string{googleMailScope}, TokenURL: k.TokenURI, Subject: user,
	}
	if cfg.OAuth2TokenURL != "" {
		conf.TokenURL = cfg.OAuth2TokenURL
	}
	if conf.TokenURL == "" {
		conf.TokenURL = providers["gmail"].tokenURL
	}
	return reuseTokens(conf.TokenSource(tokenContext()), "get an access token for "+user), nil
}

// appOnlyTokens gives app-only access tokens from the application's
// client ID and secret. The token endpoint is the tenant's: the common
// endpoint issues no app-only tokens.
func appOnlyTokens(cfg EndpointConfig) (func() (string, error), error) {
	conf := &clientcredentials.Config{ClientID: cfg.OAuth2ClientID, TokenURL: cfg.OAuth2TokenURL,
		Scopes: []string{office365AppScope}, AuthStyle: oauth2.AuthStyleInParams}
	if conf.TokenURL == "" && cfg.OAuth2Tenant != "" {
		conf.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(cfg.OAuth2Tenant) + "/oauth2/v2.0/token"
	}
	if cfg.OAuth2ClientSecretFile != "" {
		b, err := os.ReadFile(cfg.OAuth2ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oauth2_client_secret_file: %w", err)
		}
		conf.ClientSecret = strings.TrimSpace(string(b))
	}
	switch {
	case conf.ClientID == "" || (conf.ClientSecret == "") == (cfg.OAuth2ClientCertificateFile == ""):
		return nil, errors.New("app-only access needs oauth2_client_id and one of oauth2_client_secret_file and oauth2_client_certificate_file")
	case conf.TokenURL == "":
		return nil, errors.New("app-only access needs the tenant: oauth2_tenant (its ID or domain) or oauth2_token_url")
	}
	if cfg.OAuth2ClientCertificateFile != "" {
		cert, err := loadCertCredential(cfg.OAuth2ClientCertificateFile)
		if err != nil {
			return nil, err
		}
		return reuseTokens(&certTokens{conf: *conf, cert: cert}, "get an app-only access token"), nil
	}
	return reuseTokens(conf.TokenSource(tokenContext()), "get an app-only access token"), nil
}

// tokenContext is the context token requests run in: a client that gives
// up on a silent provider.
func tokenContext() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: time.Minute})
}

// reuseTokens serves ts's access tokens, fetching a new one a minute
// before the last expires; it is called for each new connection, so
// reconnects in a long run log in with a valid token. Failures are worded
// by providerError: the provider's words, never the request.
func reuseTokens(ts oauth2.TokenSource, what string) func() (string, error) {
	ts = oauth2.ReuseTokenSourceWithExpiry(nil, ts, time.Minute)
	var mu sync.Mutex
	return func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		t, err := ts.Token()
		if err != nil {
			return "", providerError(what, err)
		}
		return t.AccessToken, nil
	}
}

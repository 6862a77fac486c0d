package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Microsoft 365 app-only access with a certificate instead of a client
// secret: what Microsoft recommends for applications (a secret is a
// password that expires; a certificate's private key never leaves the
// machine). The application proves itself with a client assertion, a JWT
// it signs with the key, naming the certificate by its thumbprint
// (https://learn.microsoft.com/entra/identity-platform/certificate-credentials):
// header alg RS256 and x5t (base64url SHA-1 of the certificate) with
// x5t#S256; claims aud (the token endpoint), iss and sub (the client ID),
// jti, nbf, iat and exp. A fresh assertion is made for every token request.

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// certCredential is a certificate and its private key, from one PEM file.
type certCredential struct {
	key  *rsa.PrivateKey
	x5t  string // base64url SHA-1 of the DER certificate
	x5tS string // base64url SHA-256
}

func loadCertCredential(path string) (*certCredential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("oauth2_client_certificate_file: %w", err)
	}
	c := &certCredential{}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			if c.x5t == "" {
				s1, s256 := sha1.Sum(blk.Bytes), sha256.Sum256(blk.Bytes)
				c.x5t, c.x5tS = base64.RawURLEncoding.EncodeToString(s1[:]), base64.RawURLEncoding.EncodeToString(s256[:])
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if rk, ok := k.(*rsa.PrivateKey); err == nil && ok {
				c.key = rk
			}
		case "RSA PRIVATE KEY":
			if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
				c.key = k
			}
		}
	}
	// The errors name what is missing, never a byte of the file.
	switch {
	case c.x5t == "":
		return nil, errors.New("oauth2_client_certificate_file: no CERTIFICATE block (want the certificate and its RSA private key, PEM)")
	case c.key == nil:
		return nil, errors.New("oauth2_client_certificate_file: no RSA private key (PRIVATE KEY or RSA PRIVATE KEY block)")
	}
	return c, nil
}

// assertion signs a client assertion for clientID at tokenURL.
func (c *certCredential) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	rand.Read(jti)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": c.x5t, "x5t#S256": c.x5tS})
	claims := enc(map[string]any{"aud": tokenURL, "iss": clientID, "sub": clientID,
		"jti": fmt.Sprintf("%x", jti), "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	sum := sha256.Sum256([]byte(head + "." + claims))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign the client assertion: %w", err)
	}
	return head + "." + claims + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// certTokens is a token source for the client credentials grant with a
// certificate: each token request carries a new assertion.
type certTokens struct {
	conf clientcredentials.Config
	cert *certCredential
}

func (t *certTokens) Token() (*oauth2.Token, error) {
	a, err := t.cert.assertion(t.conf.ClientID, t.conf.TokenURL, time.Now())
	if err != nil {
		return nil, err
	}
	conf := t.conf
	conf.EndpointParams = url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
	return conf.TokenSource(tokenContext()).Token()
}

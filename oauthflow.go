package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"golang.org/x/oauth2"
)

// The installed-app flow (RFC 8252, "OAuth 2.0 for Native Apps"): the
// browser signs in at the provider, which redirects it to a listener on
// 127.0.0.1 with an authorization code; the code is exchanged with PKCE
// (RFC 7636, S256). Google directs command-line tools to it: its device
// flow does not allow the mail scope, https://mail.google.com/
// (developers.google.com/identity/protocols/oauth2/limited-input-device,
// "Allowed scopes"; .../oauth2/native-app, "Loopback IP address").

// loginTimeout is how long the listener waits for the browser.
const loginTimeout = 10 * time.Minute

// loopbackLogin runs the installed-app flow with conf (its AuthURL and
// TokenURL set): it listens on a free port of 127.0.0.1, shows the
// authorization URL (and has browse open it, unless nil), checks the
// redirect's state, and exchanges the code with the PKCE verifier.
func loopbackLogin(ctx context.Context, conf *oauth2.Config, browse func(string) error, stderr io.Writer) (*oauth2.Token, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's redirect: %w", err)
	}
	defer ln.Close()
	c := *conf
	c.RedirectURL = fmt.Sprintf("http://%s/", ln.Addr())
	state, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	// access_type=offline: Google gives a refresh token only when asked;
	// prompt=consent: and again on a second login, not only the first.
	authURL := c.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case r.URL.Path != "/":
			http.NotFound(w, r)
			return
		case q.Get("state") != state:
			// Not the answer to this login (another page, a forged
			// request): refused, and the wait goes on.
			http.Error(w, "mailferry: this is not the answer to the login it started (state does not match)", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("the provider refused: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("the provider's answer has no code")
		default:
			res.code = q.Get("code")
		}
		msg := "Done: mailferry has what it needs. You may close this window."
		if res.err != nil {
			msg = "mailferry: " + res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>mailferry</title><p>%s</p>\n", html.EscapeString(msg))
		select {
		case got <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(stderr, "To let mailferry read and write your mail, open this page and allow access:\n\n    %s\n\n", authURL)
	if browse != nil {
		if err := browse(authURL); err == nil {
			fmt.Fprintln(stderr, "(opened in your browser)")
		}
	}
	fmt.Fprintf(stderr, "Waiting for the browser to come back to %s ...\n", c.RedirectURL)
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer from the browser: %w", context.Cause(ctx))
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := c.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, providerError("exchange the code", err)
	}
	return tok, nil
}

// openBrowser asks the desktop to open url; it fails where there is none
// (a server over SSH), and the printed URL is the way then.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

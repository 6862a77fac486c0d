package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// oauthConfig is the OAuth2 client of an endpoint: its own settings, with
// the provider's endpoints where it names none.
func oauthConfig(cfg EndpointConfig) (*oauth2.Config, error) {
	p, err := lookupProvider(cfg.Provider)
	if err != nil {
		return nil, err
	}
	c := &oauth2.Config{ClientID: cfg.OAuth2ClientID, Scopes: p.scopes,
		Endpoint: oauth2.Endpoint{TokenURL: p.tokenURL, DeviceAuthURL: p.deviceURL, AuthURL: p.authURL, AuthStyle: oauth2.AuthStyleInParams}}
	if cfg.OAuth2TokenURL != "" {
		c.Endpoint.TokenURL = cfg.OAuth2TokenURL
	}
	if cfg.OAuth2ClientSecretFile != "" {
		b, err := os.ReadFile(cfg.OAuth2ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oauth2_client_secret_file: %w", err)
		}
		c.ClientSecret = strings.TrimSpace(string(b))
	}
	if c.ClientID == "" || c.Endpoint.TokenURL == "" {
		return nil, errors.New("OAuth2 needs oauth2_client_id, and oauth2_token_url or a provider")
	}
	return c, nil
}

// tokenSource gives fresh access tokens from the endpoint's refresh token
// (oauth2_refresh_token_file or _cmd), refreshing a minute before one
// expires; it is called for each new connection, so reconnects in a long
// run log in with a valid token. The tokens never reach a log.
func tokenSource(cfg EndpointConfig) (func() (string, error), error) {
	conf, err := oauthConfig(cfg)
	if err != nil {
		return nil, err
	}
	var refresh string
	switch {
	case cfg.OAuth2RefreshTokenFile != "":
		b, err := os.ReadFile(cfg.OAuth2RefreshTokenFile)
		if err != nil {
			return nil, fmt.Errorf("oauth2_refresh_token_file: %w", err)
		}
		refresh = strings.TrimSpace(string(b))
	case cfg.OAuth2RefreshTokenCmd != "":
		if refresh, err = runSecretCmd("oauth2_refresh_token_cmd", cfg.OAuth2RefreshTokenCmd); err != nil {
			return nil, err
		}
	}
	if refresh == "" {
		return nil, errors.New("OAuth2 needs a refresh token: oauth2_refresh_token_file or oauth2_refresh_token_cmd (mailferry oauth login makes one)")
	}
	return reuseTokens(conf.TokenSource(tokenContext(), &oauth2.Token{RefreshToken: refresh}), "refresh the access token"), nil
}

// loginOptions are oauth login's flags beyond the endpoint's settings.
type loginOptions struct {
	out                string
	authURL, deviceURL string
	device             bool               // the device flow, whatever the provider's default
	browse             func(string) error // opens the authorization URL; nil: print it only
}

// providerError words a failed token request: the provider's own words,
// without the request, which holds the refresh token or the code.
func providerError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			// The JWT grant leaves the answer unparsed: its RFC 6749
			// §5.2 fields, and nothing else of the body.
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.Unmarshal(re.Body, &body)
			code, desc = body.Error, body.Description
		}
		if code == "" && re.Response != nil {
			code = re.Response.Status
		}
		return fmt.Errorf("%s: %s", what, strings.TrimSpace(code+" "+desc))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// oauthCommand is "mailferry oauth login".
func oauthCommand(ctx context.Context, stdout, stderr io.Writer, code *int) *cobra.Command {
	var cfg EndpointConfig
	var opt loginOptions
	var noBrowser bool
	login := &cobra.Command{
		Use:   "login --provider gmail|office365 --client-id ID --out FILE",
		Short: "get an OAuth2 refresh token (a browser sign-in; the device flow with --device)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if !noBrowser {
				opt.browse = openBrowser
			}
			var err error
			*code, err = oauthLogin(ctx, cfg, opt, stderr)
			return err
		},
	}
	fs := login.Flags()
	fs.StringVar(&cfg.Provider, "provider", "", "gmail (google) or office365 (microsoft)")
	fs.StringVar(&cfg.OAuth2ClientID, "client-id", "", "the OAuth2 client `ID` registered with the provider")
	fs.StringVar(&cfg.OAuth2ClientSecretFile, "client-secret-file", "", "a `FILE` holding the client secret, if the client has one")
	fs.StringVar(&cfg.OAuth2TokenURL, "token-url", "", "the token endpoint `URL` (default: the provider's)")
	fs.StringVar(&opt.authURL, "auth-url", "", "the authorization endpoint `URL` the browser signs in at (default: the provider's)")
	fs.StringVar(&opt.deviceURL, "device-url", "", "the device authorization endpoint `URL` (default: the provider's; implies --device)")
	fs.BoolVar(&opt.device, "device", false, "use the device flow (a code typed on another device) instead of a browser sign-in")
	fs.BoolVar(&noBrowser, "no-browser", false, "print the sign-in URL without opening a browser")
	fs.StringVar(&opt.out, "out", "", "write the refresh token to `FILE` (0600)")
	login.RegisterFlagCompletionFunc("provider", cobra.FixedCompletions([]string{"gmail", "office365"}, cobra.ShellCompDirectiveNoFileComp))
	login.MarkFlagFilename("out")
	login.MarkFlagFilename("client-secret-file")
	oauth := &cobra.Command{
		Use:   "oauth login --provider P --client-id ID --out FILE",
		Short: "get an OAuth2 refresh token",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprint(stderr, "Usage: mailferry oauth login --provider gmail|office365 --client-id ID --out FILE\n")
			*code = exitUsage
			return nil
		},
	}
	oauth.AddCommand(login)
	return oauth
}

// oauthLogin gets a refresh token and stores it in a 0600 file: by the
// installed-app flow (a browser sign-in, oauthflow.go) where the provider
// asks for it or --auth-url is given, else by the device authorization
// flow (RFC 8628), which prints where to go and which code to enter.
func oauthLogin(ctx context.Context, cfg EndpointConfig, opt loginOptions, stderr io.Writer) (int, error) {
	if opt.out == "" {
		return exitUsage, usagef("oauth login: --out FILE is needed: it receives the refresh token")
	}
	conf, err := oauthConfig(cfg)
	if err != nil {
		return exitUsage, usageError{msg: "oauth login: " + err.Error()}
	}
	p, _ := lookupProvider(cfg.Provider)
	if opt.authURL != "" {
		conf.Endpoint.AuthURL = opt.authURL
	}
	if opt.deviceURL != "" {
		conf.Endpoint.DeviceAuthURL = opt.deviceURL
		opt.device = true
	}
	browser := !opt.device && (p.loopback || opt.authURL != "")
	var tok *oauth2.Token
	switch {
	case browser:
		if conf.Endpoint.AuthURL == "" {
			return exitUsage, usagef("oauth login: no authorization endpoint: give --provider or --auth-url")
		}
		tok, err = loopbackLogin(ctx, conf, opt.browse, stderr)
	case p.name == "gmail":
		return exitUsage, usageError{msg: "oauth login: Google's device flow does not allow the mail scope (https://mail.google.com/)",
			hint: "leave out --device: Gmail logs in through the browser; on a server, see the README (an SSH port forward)"}
	default:
		tok, err = deviceLogin(ctx, conf, stderr)
	}
	if err != nil {
		return exitCode(err), fmt.Errorf("oauth login: %w", err)
	}
	if tok.RefreshToken == "" {
		return exitFailed, errors.New("oauth login: the provider gave no refresh token (for Microsoft, the offline_access scope is needed)")
	}
	if err := atomicfile.Write(opt.out, []byte(tok.RefreshToken+"\n")); err != nil {
		return exitFailed, fmt.Errorf("oauth login: %w", err)
	}
	fmt.Fprintf(stderr, "Done: the refresh token is in %s; point oauth2_refresh_token_file at it.\n", opt.out)
	return exitOK, nil
}

// deviceLogin runs the device authorization flow (RFC 8628).
func deviceLogin(ctx context.Context, conf *oauth2.Config, stderr io.Writer) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, usagef("no device authorization endpoint: give --provider or --device-url")
	}
	resp, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("device authorization: %w", err)
	}
	fmt.Fprintf(stderr, "To let mailferry read and write your mail, open\n\n    %s\n\nand enter the code  %s\n\nWaiting...\n", resp.VerificationURI, resp.UserCode)
	return conf.DeviceAccessToken(ctx, resp)
}

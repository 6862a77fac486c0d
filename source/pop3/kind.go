package pop3

import (
	"context"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/store"
)

var options = []string{"tls", "ca_file", "insecure_skip_verify", "auth", "folder", "timeout", "pipelining"}

// Kind declares POP3: pop3s://USER@HOST (TLS) and pop3://USER@HOST (STLS
// required, or ?tls=none), a source only.
var Kind = &store.Kind{
	Name: "pop3",
	Schemes: []endpoint.Scheme{
		{Name: "pop3", Server: true, Port: "110", Options: options},
		{Name: "pop3s", Server: true, Port: "995", ImplicitTLS: true, Options: options},
	},
	OpenSource: func(ctx context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		c, err := store.Server(e, env, 1)
		if err != nil {
			return nil, err
		}
		if c.TokenSource != nil { // one session: one token
			if c.Token, err = c.TokenSource(); err != nil {
				return nil, err
			}
		}
		return Open(ctx, Config{
			Addr: c.Addr, TLS: c.TLS, CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
			User: c.User, Password: c.Password, Token: c.Token, Auth: c.Auth,
			Folder: e.Options.Get("folder"), Timeout: c.Timeout, Log: env.Log,
			NoPipelining: e.Options.Get("pipelining") == "off",
		})
	},
}

package store

import (
	"github.com/mailferry/mailferry/internal/endpoint"
)

// ServerConfig is what IMAP and POP3 kinds need to connect and log in,
// read from a server endpoint and the command's Env.
type ServerConfig struct {
	endpoint.ServerOptions
	Addr string // HOST:PORT
	TLS  string // endpoint.TLSImplicit, TLSStart or TLSNone
	User string
	Secret
}

// Server reads a server endpoint's connection settings. defaultConns is
// the kind's own default, used when Env caps the connections.
func Server(e *endpoint.Endpoint, env Env, defaultConns int) (ServerConfig, error) {
	if e.User == "" {
		return ServerConfig{}, Usagef("%s: no user name: write it as %s://USER@HOST", e, e.Scheme)
	}
	sec, err := env.Secret()
	if err != nil {
		return ServerConfig{}, err
	}
	o, err := e.ServerOptions()
	if err != nil {
		return ServerConfig{}, err
	}
	if env.MaxConns > 0 {
		if o.Conns == 0 {
			o.Conns = defaultConns
		}
		o.Conns = min(o.Conns, env.MaxConns)
	}
	if o.InsecureSkipVerify {
		env.Log.Warn("TLS certificate checks are OFF (insecure_skip_verify=true): anyone on the path can read the password and mail", "server", e.Address())
	}
	return ServerConfig{ServerOptions: o, Addr: e.Address(), TLS: e.TLS, User: e.User, Secret: sec}, nil
}

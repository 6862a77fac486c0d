package endpoint

import (
	"fmt"
	"strconv"
	"time"
)

// ServerOptions are the connection options every server scheme shares.
type ServerOptions struct {
	CAFile             string        // ?ca_file=: trust these CA certificates
	InsecureSkipVerify bool          // ?insecure_skip_verify=true
	Auth               string        // ?auth=: force a login mechanism
	Conns              int           // ?connections=, 0 when not given
	Timeout            time.Duration // ?timeout=, 0 when not given
}

// ServerOptions reads the connection options of a server endpoint.
func (e *Endpoint) ServerOptions() (ServerOptions, error) {
	o := ServerOptions{CAFile: e.Options.Get("ca_file"), Auth: e.Options.Get("auth")}
	switch v := e.Options.Get("insecure_skip_verify"); v {
	case "", "false":
	case "true":
		o.InsecureSkipVerify = true
	default:
		return o, fmt.Errorf("%s: insecure_skip_verify is true or false (%w)", e, ErrSyntax)
	}
	if v := e.Options.Get("connections"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return o, fmt.Errorf("%s: connections is a number from 1 to 64 (%w)", e, ErrSyntax)
		}
		o.Conns = n
	}
	if v := e.Options.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			return o, fmt.Errorf("%s: timeout is a duration like 90s or 5m (%w)", e, ErrSyntax)
		}
		o.Timeout = d
	}
	return o, nil
}

package netx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// ErrTLSSetup is wrapped when the TLS settings themselves are wrong (a CA
// file that cannot be read or holds no certificate).
var ErrTLSSetup = errors.New("TLS setup")

// TLSConfig is the TLS configuration of a connection to addr (HOST:PORT):
// TLS 1.2 or later, the certificate checked against the system's CAs plus
// those of caFile (PEM) when given, for serverName or else addr's host.
// insecure turns the checks off (the caller warns).
func TLSConfig(addr, serverName, caFile string, insecure bool) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLSSetup, err)
	}
	if serverName == "" {
		serverName = host
	}
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", ErrTLSSetup, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrTLSSetup, caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

package dovecottest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
)

func TestStartServes(t *testing.T) {
	s := Start(t, Options{}, "alice")
	for _, p := range []int{s.IMAPPort, s.POP3Port} {
		c, err := net.Dial("tcp", Addr(p))
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "* OK") && !strings.HasPrefix(line, "+OK") {
			t.Fatalf("greeting on %d: %q", p, line)
		}
	}
	pem, _ := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", Addr(s.IMAPSPort), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("IMAPS with the test CA: %v", err)
	}
	c.Close()
}

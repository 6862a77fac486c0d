package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestWrongPortAndCertificateHints points mailferry at a real Dovecot
// the ways operators get it wrong, and checks that the error says what
// the port speaks and the hint which URL to use, with the URL written
// the way it was typed (a path, not %2F) and no Go protocol jargon.
func TestWrongPortAndCertificateHints(t *testing.T) {
	srv, src, _ := migrationPair(t)
	ca := "?ca_file=" + srv.CAFile + "&timeout=3s"
	dst := "maildir:" + t.TempDir()
	tests := []struct {
		name      string
		url       string
		want      []string // in the error or the hint
		wantNot   []string
		wantExitC int
	}{
		{"imaps to the plain IMAP port", fmt.Sprintf("imaps://%s@127.0.0.1:%d%s", src, srv.IMAPPort, ca),
			[]string{"speaks plain IMAP, not IMAP over TLS", "hint: use imap:// for this port (STARTTLS)", "ca_file=" + srv.CAFile}, []string{"first record", "%2F"}, exitFailed},
		{"imap (STARTTLS) to the IMAPS port", fmt.Sprintf("imap://%s@127.0.0.1:%d%s", src, srv.IMAPSPort, ca),
			[]string{"sent no IMAP greeting", "hint: use imaps://"}, []string{"unexpected EOF\n"}, exitFailed},
		{"imaps to the POP3S port", fmt.Sprintf("imaps://%s@127.0.0.1:%d%s", src, srv.POP3SPort, ca),
			[]string{"speaks POP3, not IMAP over TLS", "hint: this port does not speak IMAP"}, []string{"imapwire"}, exitFailed},
		{"pop3s to the IMAPS port", fmt.Sprintf("pop3s://%s@127.0.0.1:%d%s", src, srv.IMAPSPort, ca),
			[]string{"speaks IMAP, not POP3 over TLS", "hint: this port does not speak POP3"}, []string{"<nil>"}, exitFailed},
		{"pop3s to the plain POP3 port", fmt.Sprintf("pop3s://%s@127.0.0.1:%d%s", src, srv.POP3Port, ca),
			[]string{"speaks plain POP3, not POP3 over TLS", "hint: use pop3:// for this port"}, nil, exitFailed},
		{"pop3 (STLS) to the POP3S port", fmt.Sprintf("pop3://%s@127.0.0.1:%d%s", src, srv.POP3SPort, ca),
			[]string{"sent no POP3 greeting", "hint: use pop3s://"}, nil, exitFailed},
		{"a private CA without ca_file", fmt.Sprintf("imaps://%s@127.0.0.1:%d?timeout=3s", src, srv.IMAPSPort),
			[]string{"certificate signed by unknown authority", "hint: if the server's certificate is from a private CA, add ?ca_file="}, nil, exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cli(t, "copy", "--quiet", tt.url, dst)
			if code != tt.wantExitC {
				t.Errorf("exit %d, want %d", code, tt.wantExitC)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if n := strings.Count(stderr, "127.0.0.1:"); n > 2 {
				t.Errorf("the address is printed %d times:\n%s", n, stderr)
			}
		})
	}
}

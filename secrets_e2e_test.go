package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/sink/sinktest"
)

// A URL whose password is mistyped into any shape never shows it, in any
// output, while the user name and the typo stay readable.
func TestMistypedURLHidesPassword(t *testing.T) {
	for _, url := range []string{
		"imaps:/alice:hunter2SECRET@127.0.0.1:1",
		"imaps:alice:hunter2SECRET@127.0.0.1:1",
		"pop3s:/alice:hunter2SECRET@127.0.0.1:1",
		"imaps://alice:hunter2SECRET#x@127.0.0.1:1/path",
		"imaps://alice:hunter2SECRET@127.0.0.1:1/INBOX",
	} {
		for _, cmd := range []string{"copy", "plan", "verify"} {
			code, out, stderr := cli(t, cmd, url, "maildir:"+t.TempDir(), "--json")
			if code == exitOK {
				t.Errorf("%s %s: exit 0", cmd, url)
			}
			for _, part := range []string{"hunter2", "SECRET"} {
				if strings.Contains(out+stderr, part) {
					t.Errorf("%s %s shows the password:\n%s%s", cmd, url, out, stderr)
				}
			}
			if !strings.Contains(stderr, "alice") {
				t.Errorf("%s %s hides the user name too:\n%s", cmd, url, stderr)
			}
		}
	}
}

// password_cmd and password_file give the first line, as pass and gopass
// print a secret: the lines after it are never sent.
func TestPasswordFirstLine(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	sinktest.Put(t, imapStore(t, srv, user), fewFixtures("INBOX", 3))
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(dovecottest.Password+"\nlogin: "+user+"\nrecovery-code: 1234-5678\n"), 0o600)
	for _, key := range []string{
		fmt.Sprintf("password_cmd: \"printf '%%s\\\\nlogin: %s\\\\nother-secret: x\\\\n' '%s'\"", user, dovecottest.Password),
		"password_file: " + pwFile,
	} {
		cfg := fmt.Sprintf("jobs:\n  - name: j\n    source:\n      url: imaps://%s@127.0.0.1:%d?ca_file=%s\n      %s\n    destination: maildir:%s\n    checkpoint: %s\n",
			user, srv.IMAPSPort, srv.CAFile, key, filepath.Join(t.TempDir(), "d"), filepath.Join(t.TempDir(), "c"))
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(cfg), 0o600)
		code, _, stderr := cli(t, "run", p)
		if code != exitOK || !strings.Contains(stderr, "3 copied") {
			t.Fatalf("%s: exit %d\n%s", key, code, stderr)
		}
		if strings.Contains(stderr, "1234-5678") || strings.Contains(stderr, "other-secret") {
			t.Fatalf("%s: a later line shows:\n%s", key, stderr)
		}
	}
}

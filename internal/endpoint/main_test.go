package endpoint

import (
	"os"
	"testing"
)

// The kinds as the store packages register them (sink/maildir, source/mbox,
// sink/imap, source/pop3 declare the real ones; store's tests check the
// real ones parse the same way).
const (
	Maildir = "maildir"
	Mbox    = "mbox"
	IMAP    = "imap"
	POP3    = "pop3"
)

func TestMain(m *testing.M) {
	server := []string{"tls", "ca_file", "insecure_skip_verify", "auth", "timeout"}
	for _, sc := range []Scheme{
		{Name: "maildir", Kind: Maildir, Options: []string{"layout"}},
		{Name: "mbox", Kind: Mbox, Options: []string{"folder", "format", "labels", "expunged"}},
		{Name: "imap", Kind: IMAP, Server: true, Port: "143", Options: append(server, "connections")},
		{Name: "imaps", Kind: IMAP, Server: true, Port: "993", ImplicitTLS: true, Options: append(server, "connections")},
		{Name: "pop3", Kind: POP3, Server: true, Port: "110", Options: append(server, "folder")},
		{Name: "pop3s", Kind: POP3, Server: true, Port: "995", ImplicitTLS: true, Options: append(server, "folder")},
	} {
		Register(sc)
	}
	os.Exit(m.Run())
}

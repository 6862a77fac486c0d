package imap

import (
	"context"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// Watch tells once as soon as it idles, with nothing changed, since mail
// that came after the last pass listed the folder and before the watch
// began would otherwise wait for the next pass at the interval; from then
// on a delivery tells again.
func TestWatchTellsOnceIdling(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := srv.NewUser(t)
	// INBOX exists before the watch: Dovecot tells (NOTIFY MailboxName)
	// of the INBOX its SELECT makes for a new user.
	srv.Deliver(t, user, [][]byte{[]byte("Subject: 1\r\n\r\n1\r\n")}, nil)
	s, err := Open(context.Background(), Config{Addr: dovecottest.Addr(srv.IMAPSPort), TLS: TLSImplicit, CAFile: srv.CAFile,
		User: user, Password: dovecottest.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changed, ended, stop := sourcetest.StartWatch(t, s)
	told := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case err := <-ended:
			t.Fatalf("%s: Watch ended: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not told within 10 s", what)
		}
	}
	told("idling, nothing changed")
	select {
	case <-changed:
		t.Fatal("told twice with nothing changed")
	case <-time.After(300 * time.Millisecond):
	}
	srv.Deliver(t, user, [][]byte{[]byte("Subject: 2\r\n\r\n2\r\n")}, nil)
	told("a delivery into INBOX")
	stop()
}

package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/sink/sinktest"
)

// TestSubscriptionsIMAP: a migrated folder is one the user can see. From
// an account that uses no subscriptions every folder is subscribed at the
// destination; from one that does, the user's choice is kept.
func TestSubscriptionsIMAP(t *testing.T) {
	srv, _, _ := migrationPair(t)
	tests := []struct {
		name       string
		subscribed []string // at the source
		want       []string // subscribed at the destination afterwards
		wantNot    []string
	}{
		{"none at the source", nil, []string{"INBOX", "Archive", "Projects"}, nil},
		{"some at the source", []string{"Archive"}, []string{"INBOX", "Archive"}, []string{"Projects"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := srv.NewUser(t), srv.NewUser(t)
			srv.Deliver(t, src, [][]byte{[]byte("Message-ID: <s@x>\r\nSubject: s\r\n\r\nbody\r\n")}, nil)
			for _, f := range []string{"Archive", "Projects"} {
				doveadm(t, srv, "mailbox", "create", "-u", src, f)
			}
			doveadm(t, srv, "mailbox", "unsubscribe", "-u", src, "INBOX")
			for _, f := range tt.subscribed {
				doveadm(t, srv, "mailbox", "subscribe", "-u", src, f)
			}
			url := func(u string) string {
				return "imaps://" + u + "@" + dovecottest.Addr(srv.IMAPSPort) + "?ca_file=" + srv.CAFile
			}
			if code, _, stderr := cli(t, "copy", "--quiet", url(src), url(dst)); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			out := doveadm(t, srv, "mailbox", "list", "-u", dst, "-s")
			got := strings.Fields(out)
			for _, f := range tt.want {
				if !slices.Contains(got, f) {
					t.Errorf("%s not subscribed at the destination (subscribed: %q)", f, got)
				}
			}
			for _, f := range tt.wantNot {
				if slices.Contains(got, f) {
					t.Errorf("%s subscribed at the destination, but not at the source", f)
				}
			}
		})
	}
}

func doveadm(t *testing.T, srv *dovecottest.Server, args ...string) string {
	t.Helper()
	out, err := srv.Doveadm(args...)
	if err != nil {
		t.Fatalf("doveadm %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func imapclientDial(s *dovecottest.Server, user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(dovecottest.Addr(s.IMAPPort), nil)
	if err != nil {
		return nil, err
	}
	return c, c.Login(user, dovecottest.Password).Wait()
}

// Subscriptions carry over: subscribed at the source, subscribed at the
// destination; not subscribed, not subscribed.
func TestSubscriptionsCarryOver(t *testing.T) {
	srv, src, dst := migrationPair(t)
	sinktest.Put(t, imapStore(t, srv, src), append(fewFixtures("Subscribed/Yes", 2), fewFixtures("Quiet", 2)...))
	cl, err := imapclientDial(srv, src)
	if err != nil {
		t.Fatal(err)
	}
	cl.Subscribe("Subscribed/Yes").Wait()
	cl.Close()
	copyJSON(t, "copy", imapURL(srv, src), imapURL(srv, dst))
	cl, err = imapclientDial(srv, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	l, err := cl.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var subscribed []string
	for _, m := range l {
		subscribed = append(subscribed, m.Mailbox)
	}
	if !slices.Contains(subscribed, "Subscribed/Yes") || slices.Contains(subscribed, "Quiet") {
		t.Fatalf("subscribed at the destination: %q", subscribed)
	}
}

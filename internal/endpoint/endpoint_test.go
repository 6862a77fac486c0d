package endpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	home, _ := os.UserHomeDir()
	tests := []struct {
		in   string
		want Endpoint
		str  string
	}{
		{"maildir:/tmp/x", Endpoint{Kind: Maildir, Path: "/tmp/x"}, "maildir:/tmp/x"},
		{"maildir:rel/dir/", Endpoint{Kind: Maildir, Path: "rel/dir"}, "maildir:rel/dir"},
		{"maildir:///abs?layout=fs", Endpoint{Kind: Maildir, Path: "/abs", Layout: "fs"}, "maildir:/abs?layout=fs"},
		{"maildir:~/Mail", Endpoint{Kind: Maildir, Path: filepath.Join(home, "Mail")}, "maildir:" + filepath.Join(home, "Mail")},
		{"mbox:~/Takeout/All mail.mbox", Endpoint{Kind: Mbox, Path: filepath.Join(home, "Takeout/All mail.mbox")}, "mbox:" + filepath.Join(home, "Takeout/All mail.mbox")},
		{"mbox:tb/Local Folders?format=mboxrd&folder=Old", Endpoint{Kind: Mbox, Path: "tb/Local Folders"}, "mbox:tb/Local Folders?folder=Old&format=mboxrd"},
		{"imaps://alice@imap.example.com", Endpoint{Kind: IMAP, TLS: TLSImplicit, Host: "imap.example.com", Port: "993", User: "alice"}, "imaps://alice@imap.example.com:993"},
		{"imap://bob@127.0.0.1:10143?tls=none", Endpoint{Kind: IMAP, TLS: TLSNone, Host: "127.0.0.1", Port: "10143", User: "bob"}, "imap://bob@127.0.0.1:10143?tls=none"},
		{"imap://h", Endpoint{Kind: IMAP, TLS: TLSStart, Host: "h", Port: "143"}, "imap://h:143"},
		{"pop3s://a%40b.c@pop.x", Endpoint{Kind: POP3, TLS: TLSImplicit, Host: "pop.x", Port: "995", User: "a@b.c"}, "pop3s://a%40b.c@pop.x:995"},
		{"pop3://u@[::1]:110", Endpoint{Kind: POP3, TLS: TLSStart, Host: "::1", Port: "110", User: "u"}, "pop3://u@[::1]:110"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got.Kind != tt.want.Kind || got.Path != tt.want.Path || got.Layout != tt.want.Layout || got.TLS != tt.want.TLS ||
			got.Host != tt.want.Host || got.Port != tt.want.Port || got.User != tt.want.User {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "/just/a/path", "ftp://x", "maildir:", "maildir:/x?bogus=1", "imaps://", "imaps://u@h/INBOX",
		"imaps://u@h?tls=none", "imap://h?tls=yes", "imap://h?layout=fs", "pop3://u@h:99999999999",
		"mbox:", "mbox:/x?layout=fs",
	} {
		if _, err := Parse(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): err = %v, want ErrSyntax", in, err)
		}
	}
}

func TestPasswordNeverShown(t *testing.T) {
	e, err := Parse("imaps://alice:s3cret@h")
	if err != nil {
		t.Fatal(err)
	}
	if e.Password != "s3cret" {
		t.Fatalf("password = %q", e.Password)
	}
	if strings.Contains(e.String(), "s3cret") {
		t.Fatalf("String() shows the password: %s", e)
	}
	for _, in := range []string{"imaps://alice:s3cret@h", "imaps://alice:s3cret@h/bad\x7f", "ftp://alice:s3cret@h"} {
		_, err := Parse(in)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
		if strings.Contains(Redact(in), "s3cret") {
			t.Errorf("Redact(%q) shows the password", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"maildir:/x?layout=fs", "imaps://a:b@h:1", "pop3://[::1]", "imap://%zz@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		if e.Password != "" && strings.Contains(e.String(), e.Password) && !strings.Contains(e.User+e.Host+e.Path, e.Password) {
			t.Fatalf("String() of %q shows the password", s)
		}
	})
}

// A password is found and masked whatever the URL's shape, and the rest
// stays as typed so the mistake can be seen.
func TestPasswordMaskedInEveryShape(t *testing.T) {
	for _, tt := range []struct {
		in, shows string // shows: a part of the error the user needs
		ok        bool   // parses
		user, pw  string
	}{
		{"imaps://alice:hunter2/xyz@host", "", true, "alice", "hunter2/xyz"},
		{"imaps://alice:1234/TOPSECRET@host", "", true, "alice", "1234/TOPSECRET"},
		{"imaps://alice:pa?ss#wo@rd@host:993", "", true, "alice", "pa?ss#wo@rd"},
		{"imaps://alice:p%40ss@host", "", true, "alice", "p@ss"},
		{"imaps:/alice:SECRETVALUE@127.0.0.1:12993", "imaps:/alice:xxxxx@127.0.0.1:12993", false, "", ""},
		{"imaps:alice:SECRETVALUE@host", "imaps:alice:xxxxx@host", false, "", ""},
		{"pop3s:/alice:SECRETVALUE@host", "pop3s:/alice:xxxxx@host", false, "", ""},
		{"imaps:///alice:SECRETVALUE@host", "imaps:///alice:xxxxx@host", false, "", ""},
		{"imaps//alice@host", "imaps//alice@host", false, "", ""},
		{"imapz://alice:SECRETVALUE@host", "imapz:xxxxx@host", false, "", ""},
		{"imaps://alice:SECRET%0d%0aVALUE@host", "alice:xxxxx@host", false, "", ""},
		{"imaps://al%0d%0aice:SECRETVALUE@host", "user name", false, "", ""},
	} {
		e, err := Parse(tt.in)
		if tt.ok {
			if err != nil || e.User != tt.user || e.Password != tt.pw {
				t.Errorf("Parse(%q) = %+v, %v; want user %q password %q", tt.in, e, err, tt.user, tt.pw)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tt.in)
			continue
		}
		for _, secret := range []string{"SECRETVALUE", "SECRET", "VALUE"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Parse(%q): error shows the password: %v", tt.in, err)
			}
		}
		if !strings.Contains(err.Error(), tt.shows) {
			t.Errorf("Parse(%q): error %q lacks %q", tt.in, err, tt.shows)
		}
	}
}

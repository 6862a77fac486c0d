package imap

import (
	"bufio"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestReadList(t *testing.T) {
	answer := strings.Join([]string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Subscribed) "/" "R&D"`,
		`* LIST (\HasChildren) "/" "a \"quoted\" name"`,
		"* LIST (\\HasNoChildren) \"/\" {3}\r\n\xc3\xa9x",
		`* LIST (\Noselect) NIL Shared`,
		`* LIST (\Sent) "/" "Sent" ("CHILDINFO" ("SUBSCRIBED"))`,
		`* STATUS INBOX (MESSAGES 1)`,
		`mf1 OK List completed.`,
		`* LIST () "/" after-the-end`,
	}, "\r\n") + "\r\n"
	got, err := readList(bufio.NewReader(strings.NewReader(answer)), "mf1")
	if err != nil {
		t.Fatal(err)
	}
	want := []listEntry{
		{[]imap.MailboxAttr{`\HasNoChildren`}, "INBOX"},
		{[]imap.MailboxAttr{`\HasNoChildren`, `\Subscribed`}, "R&D"},
		{[]imap.MailboxAttr{`\HasChildren`}, `a "quoted" name`},
		{[]imap.MailboxAttr{`\HasNoChildren`}, "\xc3\xa9x"},
		{[]imap.MailboxAttr{`\Noselect`}, "Shared"},
		{[]imap.MailboxAttr{`\Sent`}, "Sent"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].name != want[i].name || !slices.Equal(got[i].attrs, want[i].attrs) {
			t.Errorf("entry %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestReadListRefuses(t *testing.T) {
	tests := []struct{ name, answer, want string }{
		{"NO", "mf1 NO go away\r\n", "go away"},
		{"a huge literal", "* LIST () \"/\" {99999999}\r\n", "literal"},
		{"a line without end", "* LIST () \"/\" " + strings.Repeat("x", maxListLine+1), "longer than"},
		{"unclosed attributes", "* LIST (\\A \"/\" x\r\nmf1 OK\r\n", "unclosed"},
		{"the answer cut", "* LIST () \"/\" x\r\n", "EOF"},
	}
	for _, tt := range tests {
		_, err := readList(bufio.NewReader(strings.NewReader(tt.answer)), "mf1")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

package header

import (
	"strings"
	"testing"
)

func TestMessageID(t *testing.T) {
	tests := []struct {
		name, msg, want string
		found           bool
	}{
		{"plain", "From: a\r\nMessage-ID: <x@y>\r\n\r\nbody", "<x@y>", true},
		{"case and space", "message-id  : <x@y>\n\nbody", "<x@y>", true},
		{"folded", "Message-Id:\r\n <x@y>\r\nSubject: s\r\n\r\n", "<x@y>", true},
		{"folded twice", "Message-Id: <x\n\t@y>\nX: 1\n\n", "<x @y>", true},
		{"mbox From line and junk", "From a@b Mon Jan  1 00:00:00 2024\nthis line has no colon\nMessage-ID: <m@n>\n\n", "<m@n>", true},
		{"only in body", "Subject: s\n\nMessage-ID: <body@x>\n", "", false},
		{"none", "Subject: s\n\nbody", "", false},
		{"no body, at EOF", "Message-ID: <e@f>", "<e@f>", true},
		{"first wins", "Message-ID: <1@a>\nMessage-ID: <2@a>\n\n", "<1@a>", true},
		{"8-bit", "Subject: caf\xe9\nMessage-ID: <\xe9@x>\n\n", "<\xe9@x>", true},
		{"empty message", "", "", false},
		{"long line before", "X-Long: " + strings.Repeat("a", 100000) + "\nMessage-ID: <l@x>\n\n", "<l@x>", true},
	}
	for _, tt := range tests {
		got, found, err := MessageID(strings.NewReader(tt.msg))
		if err != nil || got != tt.want || found != tt.found {
			t.Errorf("%s: ReadMessageID = %q, %v, %v; want %q, %v", tt.name, got, found, err, tt.want, tt.found)
		}
	}
}

func FuzzMessageID(f *testing.F) {
	f.Add("Message-ID: <x@y>\n\n")
	f.Add("From x\nno colon\n")
	f.Fuzz(func(t *testing.T, s string) {
		MessageID(strings.NewReader(s)) // must not panic
	})
}

package plan

import (
	"strings"
	"testing"
)

func TestNormalizeMessageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<abc@Example.COM>", "abc@example.com"},
		{"  <abc@example.com>  ", "abc@example.com"},
		{"<ABC@example.com>", "ABC@example.com"}, // local part keeps its case
		{"<abc@x> (added by relay)", "abc@x"},
		{"<very.long.id\r\n @example.com>", "very.long.id@example.com"},
		{"no-brackets@Host", "no-brackets@host"},
		{"<>", ""},
		{"", ""},
		{"  ", ""},
		{"<a@b> <c@d>", "a@b"},
		{"<unterminated@x", "<unterminated@x"},
	}
	for _, tt := range tests {
		if got := NormalizeMessageID(tt.in); got != tt.want {
			t.Errorf("NormalizeMessageID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadMessageID(t *testing.T) {
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
		got, found, err := ReadMessageID(strings.NewReader(tt.msg))
		if err != nil || got != tt.want || found != tt.found {
			t.Errorf("%s: ReadMessageID = %q, %v, %v; want %q, %v", tt.name, got, found, err, tt.want, tt.found)
		}
	}
}

func TestContentKeyFoldsLineEndings(t *testing.T) {
	a, _ := ContentKey(strings.NewReader("a\r\nb\r\n"))
	b, _ := ContentKey(strings.NewReader("a\nb\n"))
	c, _ := ContentKey(strings.NewReader("a\nb\nc"))
	if a != b || a == c || !strings.HasPrefix(a, "c:") {
		t.Fatalf("keys: %q %q %q", a, b, c)
	}
}

func FuzzNormalizeMessageID(f *testing.F) {
	for _, s := range []string{"<a@B>", " <x\r\n @y> (c)", "<", ">", "@@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeMessageID(s)
		if NormalizeMessageID("<"+n+">") != n && !strings.ContainsAny(n, "<>") {
			t.Fatalf("not idempotent: %q -> %q", s, n)
		}
	})
}

func FuzzReadMessageID(f *testing.F) {
	f.Add("Message-ID: <x@y>\n\n")
	f.Add("From x\nno colon\n")
	f.Fuzz(func(t *testing.T, s string) {
		ReadMessageID(strings.NewReader(s)) // must not panic
	})
}

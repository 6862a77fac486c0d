package header

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

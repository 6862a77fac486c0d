package mutf7

import (
	"errors"
	"testing"
)

func TestVectors(t *testing.T) {
	// RFC 3501 §5.1.3 and names Dovecot writes on disk (library audit §1.4, §3).
	tests := []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"AT&T", "AT&-T"},
		{"日本語", "&ZeVnLIqe-"},
		{"Übersicht/Sub&Dir", "&ANw-bersicht/Sub&-Dir"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"&", "&-"},
		{"", ""},
		{"a😀b", "a&2D3eAA-b"},
	}
	for _, tt := range tests {
		if got := Encode(tt.utf8); got != tt.mutf7 {
			t.Errorf("Encode(%q) = %q, want %q", tt.utf8, got, tt.mutf7)
		}
		got, err := Decode(tt.mutf7)
		if err != nil || got != tt.utf8 {
			t.Errorf("Decode(%q) = %q, %v, want %q", tt.mutf7, got, err, tt.utf8)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, s := range []string{"&ZeVnLIqe", "&A-", "&AGE-" /* encodes 'a' */, "a\x01b", "caf\xc3\xa9", "&2D0-" /* lone surrogate */} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q): err = %v, want ErrInvalid", s, err)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"Entwürfe", "AT&T", "日本語/x", "&&-&", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8ValidNoControl(s) {
			return
		}
		got, err := Decode(Encode(s))
		if err != nil || got != s {
			t.Fatalf("round trip %q: %q, %v", s, got, err)
		}
	})
}

func utf8ValidNoControl(s string) bool {
	for _, r := range s {
		if r == 0xFFFD || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Package mutf7 implements the modified UTF-7 encoding of IMAP mailbox names
// (RFC 3501 §5.1.3), which Dovecot also uses for Maildir++ folder names on
// disk. go-imap v2 has a codec, but in an internal package.
package mutf7

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The modified BASE64 of RFC 3501: "," instead of "/", no padding.
var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// ErrInvalid is wrapped by every Decode error.
var ErrInvalid = errors.New("invalid modified UTF-7")

// Encode returns s in modified UTF-7. s must be valid UTF-8.
func Encode(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 0, 2*len(u))
		for _, c := range u {
			buf = append(buf, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(b64.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// Decode returns the UTF-8 form of the modified UTF-7 string s.
func Decode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: byte 0x%02x at %d in %q", ErrInvalid, c, i, s)
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated shift at %d in %q", ErrInvalid, i, s)
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := b64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("%w: bad base64 %q in %q", ErrInvalid, enc, s)
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		rs := utf16.Decode(u)
		for _, r := range rs {
			// RFC 3501: printable ASCII must not be encoded, and a broken
			// surrogate pair decodes to U+FFFD; both mean the name was not
			// produced by a conforming encoder, so round trips would differ.
			if (r >= 0x20 && r <= 0x7e) || r == utf8.RuneError {
				return "", fmt.Errorf("%w: %q encodes %q", ErrInvalid, enc, r)
			}
		}
		b.WriteString(string(rs))
	}
	return b.String(), nil
}

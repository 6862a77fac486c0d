package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/mailferry/mailferry/internal/eol"
)

// Dedup is how messages are recognised as the same.
type Dedup string

const (
	// DedupMessageID keys a message by its normalised Message-ID, or by its
	// content hash when it has none.
	DedupMessageID Dedup = "message-id"
	// DedupContent keys every message by its content hash.
	DedupContent Dedup = "content"
	// DedupNone copies every source message once; only the checkpoint
	// stops a re-run from copying it again.
	DedupNone Dedup = "none"
)

// ParseDedup reads a --dedup value; "" stays unset, for Run to choose.
func ParseDedup(s string) (Dedup, error) {
	switch d := Dedup(strings.ToLower(s)); d {
	case DedupMessageID, DedupContent, DedupNone:
		return d, nil
	case "":
		return "", nil // unset: message-id, or content for a move (see Options)
	}
	return "", fmt.Errorf("unknown dedup mode %q (want message-id, content or none)", s)
}

// Key prefixes: a key says what it was made from.
const (
	msgIDPrefix   = "m:"
	contentPrefix = "c:"
)

// NormalizeMessageID returns the canonical form of a Message-ID header
// value, or "" if it holds no identifier:
//
//   - folding and surrounding white space are removed;
//   - if the value has an angle-bracketed part, only the first one counts
//     (dropping comments and trailing junk some relays add);
//   - white space inside is removed (a folded long id);
//   - the part after the last "@" is lower-cased: it is a domain name,
//     case-insensitive; the part before it is kept as it is, since RFC 5322
//     does not make it case-insensitive.
func NormalizeMessageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '>'); j >= 0 {
			v = v[i+1 : i+1+j]
		}
	}
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
	if at := strings.LastIndexByte(v, '@'); at >= 0 {
		v = v[:at] + strings.ToLower(v[at:])
	}
	return v
}

// MessageIDKey returns the dedup key for a Message-ID header value, or ""
// when it holds no identifier.
func MessageIDKey(raw string) string {
	if id := NormalizeMessageID(raw); id != "" {
		return msgIDPrefix + id
	}
	return ""
}

// ContentKey returns the dedup key of a message's content: the SHA-256 of
// its bytes with CRLF line endings folded to LF, so the same message stored
// in Maildir (LF) and over IMAP (CRLF) has one key.
func ContentKey(r io.Reader) (string, error) {
	h := sha256.New()
	lf := &eol.LFWriter{W: h}
	if _, err := io.Copy(lf, r); err != nil {
		return "", err
	}
	lf.Close()
	return contentPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

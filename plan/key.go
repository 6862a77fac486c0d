package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/mailferry/mailferry/internal/eol"
	"github.com/mailferry/mailferry/internal/header"
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

// MessageIDKey returns the dedup key for a Message-ID header value, or ""
// when it holds no identifier.
func MessageIDKey(raw string) string {
	if id := header.NormalizeMessageID(raw); id != "" {
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

// Package header reads what mailferry needs from a message header without
// parsing the message: real mail is too often malformed for a strict parser.
package header

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// maxHeader bounds how much of a message is scanned for its Message-ID, so a
// message with no blank line is not read whole.
const maxHeader = 4 << 20

// MessageID scans the header section of a message for the first
// Message-ID field and returns its unfolded value. It is tolerant where
// net/mail and go-message are not (library audit §6): a line without a colon,
// an mbox "From " line, 8-bit bytes or bare LF do not stop it.
func MessageID(r io.Reader) (value string, found bool, err error) {
	err = Scan(r, func(name, v string) bool {
		if strings.EqualFold(name, "Message-ID") {
			value, found = v, true
			return false
		}
		return true
	})
	return value, found, err
}

// Scan calls fn with the name and unfolded value of each header field, in
// order, until fn returns false or the header ends. Lines that are not
// fields (no colon, an mbox "From " line) are skipped.
func Scan(r io.Reader, fn func(name, value string) bool) error {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeader), 16<<10)
	var name string
	var val []byte
	have := false
	emit := func() bool {
		if !have {
			return true
		}
		have = false
		return fn(name, string(bytes.TrimSpace(val)))
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An overlong header line: keep the part read, skip the rest.
			line = bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		folded := len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t')
		switch {
		case folded && have:
			val = append(val, ' ')
			val = append(val, bytes.TrimSpace(trimmed)...)
		case len(trimmed) == 0 && len(line) > 0:
			emit()
			return nil // blank line: end of header
		case !folded:
			if !emit() {
				return nil
			}
			if n, v, ok := bytes.Cut(trimmed, []byte(":")); ok && len(bytes.TrimSpace(n)) > 0 && !bytes.ContainsAny(bytes.TrimSpace(n), " \t") {
				name, val, have = string(bytes.TrimSpace(n)), append(val[:0], bytes.TrimSpace(v)...), true
			}
		}
		if err != nil { // EOF
			emit()
			return nil
		}
	}
}

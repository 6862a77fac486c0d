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
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeader), 16<<10)
	var cur []byte // the field being unfolded
	inMsgID := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An overlong header line: keep the part read, skip the rest.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, err
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		folded := len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t')
		switch {
		case folded && inMsgID:
			cur = append(cur, ' ')
			cur = append(cur, bytes.TrimSpace(trimmed)...)
		case inMsgID:
			return string(bytes.TrimSpace(cur)), true, nil
		case len(trimmed) == 0 && len(line) > 0:
			return "", false, nil // blank line: end of header
		case !folded:
			name, val, ok := bytes.Cut(trimmed, []byte(":"))
			if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Message-ID") {
				inMsgID = true
				cur = append(cur[:0], bytes.TrimSpace(val)...)
			}
		}
		if err != nil { // EOF
			if inMsgID {
				return string(bytes.TrimSpace(cur)), true, nil
			}
			return "", false, nil
		}
	}
}

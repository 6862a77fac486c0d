package imapappend

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	srcimap "github.com/mailferry/mailferry/source/imap"
)

// read takes the server's answers in order and hands each to its command.
func (a *Appender) read() {
	br := bufio.NewReaderSize(a.st.Conn, 16<<10)
	var bye string
	for {
		line, err := readResponse(br)
		if err != nil {
			if bye != "" {
				err = fmt.Errorf("%w (the server said BYE: %s)", err, bye)
			}
			a.fail(fmt.Errorf("read answer: %w", err))
			return
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			// EXISTS, RECENT and the like; BYE explains the end to come.
			if typ, text, _ := strings.Cut(rest, " "); strings.EqualFold(typ, "BYE") {
				bye = text
			}
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		a.mu.Lock()
		var b *appendBatch
		if len(a.pending) > 0 && a.pending[0].tag == tag {
			b = a.pending[0]
			a.pending = a.pending[1:]
			a.cond.Broadcast() // room for the next command
		}
		a.mu.Unlock()
		if b == nil {
			// "+" (a continuation nobody asked for) or an unknown tag:
			// the conversation is not what we think it is.
			a.fail(fmt.Errorf("unexpected answer %q", truncate(line, 80)))
			return
		}
		a.st.DC.End()
		ans, bad := parseTagged(rest, len(b.calls))
		if bad {
			// After BAD, whether the server read the literals is not
			// certain: start afresh. The connection is marked done
			// before the callers hear, so their next message takes a new
			// one.
			a.fail(fmt.Errorf("the server answered BAD: %s", ans.err))
		}
		for i, c := range b.calls {
			switch {
			case ans.err != nil && len(b.calls) > 1:
				c.done <- Result{err: fmt.Errorf("%w: %w", errSingly, ans.err)}
			case ans.err != nil:
				c.done <- Result{err: ans.err}
			case len(ans.uids) == len(b.calls):
				c.done <- Result{UIDValidity: ans.uidValidity, UID: ans.uids[i]}
			default:
				c.done <- Result{} // no UIDPLUS: no IDs
			}
		}
		if bad {
			return
		}
	}
}

// readResponse reads one response line without its CRLF. Literals inside
// it (an untagged FETCH of flags may carry one) are skipped, and a line is
// kept to 64 KB: only tagged answers are looked at.
func readResponse(br *bufio.Reader) (string, error) {
	const keep = 64 << 10
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(b) < keep {
			b = append(b, chunk[:min(len(chunk), keep-len(b))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		line := strings.TrimRight(string(b), "\r\n")
		if n, ok := srcimap.TrailingLiteral(line); ok {
			if _, err := io.CopyN(io.Discard, br, n); err != nil {
				return "", err
			}
			b = []byte(line[:strings.LastIndexByte(line, '{')])
			continue
		}
		return line, nil
	}
}

// tagged is a tagged answer: the UIDs APPENDUID gave (RFC 4315), or the
// refusal.
type tagged struct {
	uidValidity uint32
	uids        []imap.UID
	err         error
}

// parseTagged reads "OK [APPENDUID v uid-set] text", "NO [CODE] text" or
// "BAD text" for a command of n messages. A NO or BAD becomes an
// *imap.Error, as go-imap makes it, so classify treats both paths alike.
func parseTagged(rest string, n int) (ans tagged, bad bool) {
	typ, text, _ := strings.Cut(rest, " ")
	var code, arg string
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, arg, _ = strings.Cut(text[1:end], " ")
			text = strings.TrimSpace(text[end+1:])
		}
	}
	switch t := imap.StatusResponseType(strings.ToUpper(typ)); t {
	case imap.StatusResponseTypeOK:
		if strings.EqualFold(code, "APPENDUID") {
			v, set, _ := strings.Cut(arg, " ")
			if vv, err := strconv.ParseUint(v, 10, 32); err == nil {
				ans.uidValidity, ans.uids = uint32(vv), parseUIDSet(set, n)
			}
		}
		return ans, false
	case imap.StatusResponseTypeNo, imap.StatusResponseTypeBad:
		ans.err = &imap.Error{Type: t, Code: imap.ResponseCode(strings.ToUpper(code)), Text: text}
		return ans, t == imap.StatusResponseTypeBad
	default:
		ans.err = fmt.Errorf("unexpected answer %q", truncate(rest, 80))
		return ans, true
	}
}

// parseUIDSet expands "5", "5:7" or "5:7,9" into at most n UIDs, in the
// order the messages were given (a MULTIAPPEND's messages get ascending
// UIDs); nil if it is not such a set or holds more than n.
func parseUIDSet(set string, n int) []imap.UID {
	var out []imap.UID
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil || a == 0 || b == 0 {
			return nil
		}
		if a > b {
			a, b = b, a // a range may be given either way round
		}
		if b-a >= uint64(n-len(out)) {
			return nil
		}
		for u := a; u <= b; u++ {
			out = append(out, imap.UID(u))
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

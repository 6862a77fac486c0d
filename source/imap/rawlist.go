package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/source"
)

// Some servers list mailbox names that are not valid modified UTF-7 (RFC
// 3501 §5.1.3): "R&D" with a bare '&', or raw 8-bit UTF-8. go-imap decodes
// every name of a LIST answer and fails the whole command on such a one
// (internal/imapwire ExpectMailbox), and it encodes names again on SELECT,
// so it can neither list nor select them (docs/library-audit.md, §1.4). Rather
// than fail the account, mailferry then lists the folders itself on a
// connection taken from go-imap: every other folder is copied, and each
// folder whose name cannot be said is failed by name (exit 3).

// ErrUnselectable is wrapped for a folder whose server name is not valid
// modified UTF-7: listed, but not selectable through go-imap.
var ErrUnselectable = errors.New("the server's name for this folder is not valid modified UTF-7 (RFC 3501 §5.1.3), which mailferry's IMAP library cannot select")

// badUTF7 reports whether err is go-imap refusing a name in an answer.
func badUTF7(err error) bool {
	return err != nil && strings.Contains(err.Error(), "invalid UTF-7")
}

// Bounds on the raw LIST answer.
const (
	maxListLine    = 64 << 10
	maxListEntries = 100_000
)

// listEntry is one "* LIST (attrs) delim name" line.
type listEntry struct {
	attrs []imap.MailboxAttr
	name  string // as the server sent it
}

// rawFolders lists the folders on a detached connection, parsing the
// answer itself, and remembers the names go-imap cannot select.
func (s *Store) rawFolders(ctx context.Context, ns *namespace) ([]source.Folder, error) {
	st, err := s.Pool.Detached(ctx)
	if err != nil {
		return nil, fmt.Errorf("list folders again, by hand: %w", err)
	}
	defer st.Close()
	cmd := `mf1 LIST "" "*"`
	subs := st.Caps.Has(imap.CapListExtended)
	if subs {
		cmd += " RETURN (SUBSCRIBED"
		if st.Caps.Has(imap.CapSpecialUse) {
			cmd += " SPECIAL-USE"
		}
		cmd += ")"
	}
	st.DC.Begin()
	defer st.DC.End()
	if _, err := io.WriteString(st, cmd+"\r\n"); err != nil {
		return nil, Transport(fmt.Errorf("list folders: %w", err))
	}
	entries, err := readList(bufio.NewReader(st), "mf1")
	if err != nil {
		return nil, Transport(fmt.Errorf("list folders: %w", err))
	}
	s.subsListed.Store(subs)
	// Decoded once each; valid names first, so that a raw name that reads
	// like one ("é" beside "&AOk-") is the one that gets a suffix.
	type listed struct {
		entry   listEntry
		decoded string
		bad     bool
	}
	var valid, bad []listed
	for _, e := range entries {
		if hasAttr(e.attrs, imap.MailboxAttrNoSelect) || hasAttr(e.attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		l := listed{entry: e, decoded: "INBOX"}
		if !strings.EqualFold(e.name, "INBOX") {
			d, err := mutf7.Decode(e.name)
			l.decoded, l.bad = d, err != nil || mutf7.Encode(d) != e.name
		}
		if l.bad {
			l.decoded = strings.ToValidUTF8(e.name, "\uFFFD")
			bad = append(bad, l)
		} else {
			valid = append(valid, l)
		}
	}
	raw := map[string]string{}
	var out []source.Folder
	taken := map[string]bool{}
	for _, l := range append(valid, bad...) {
		name, ok := ns.FolderName(l.decoded)
		if !ok {
			s.Cfg.Log.Warn("folder skipped: its name holds '/', which mailferry uses as the hierarchy separator", "folder", l.decoded)
			continue
		}
		// One name per folder, never another's.
		for base, i := name, 2; taken[name]; i++ {
			name = fmt.Sprintf("%s (%d)", base, i)
		}
		taken[name] = true
		if l.bad {
			raw[name] = l.entry.name
		}
		out = append(out, listedFolder(name, l.entry.attrs, subs))
	}
	s.mu.Lock()
	s.raw = raw
	s.mu.Unlock()
	for name, r := range raw {
		s.Cfg.Log.Warn("folder name on the server is not valid modified UTF-7; that folder cannot be copied", "folder", name, "server_name", r)
	}
	return s.gmailFolders(out, st.Caps), nil
}

// unselectable returns the error for a folder listed under a name go-imap
// cannot select, or nil.
func (s *Store) unselectable(folder string) error {
	s.mu.Lock()
	r, ok := s.raw[folder]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return fmt.Errorf("folder %q (%q on the server): %w", folder, r, ErrUnselectable)
}

// readList reads the answer to the LIST command tagged tag.
func readList(br *bufio.Reader, tag string) ([]listEntry, error) {
	var out []listEntry
	err := readTagged(br, tag, func(line string) error {
		if !strings.HasPrefix(strings.ToUpper(line), "* LIST ") {
			return nil // other untagged data
		}
		e, err := parseListLine(line[len("* LIST "):])
		if err != nil {
			return err
		}
		if out = append(out, e); len(out) > maxListEntries {
			return fmt.Errorf("LIST: more than %d folders", maxListEntries)
		}
		return nil
	})
	return out, err
}

// readListLine reads one response line with its literals inlined as
// quoted strings' contents would be: "{3}\r\nR&D" becomes a "\x00{3}R&D"
// token parseListLine reads back.
func readListLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		part, err := readBounded(br, maxListLine-b.Len())
		if err != nil {
			return "", err
		}
		part = strings.TrimSuffix(strings.TrimSuffix(part, "\n"), "\r")
		size, ok := TrailingLiteral(part)
		if !ok {
			b.WriteString(part)
			return b.String(), nil
		}
		if size > int64(maxListLine-b.Len()-len(part)) {
			return "", fmt.Errorf("an answer holds a literal of %d bytes", size)
		}
		n := int(size)
		lit := make([]byte, n)
		if _, err := io.ReadFull(br, lit); err != nil {
			return "", err
		}
		b.WriteString(part[:strings.LastIndexByte(part, '{')])
		b.WriteString("\x00{" + strconv.Itoa(n) + "}")
		b.Write(lit)
	}
}

func readBounded(br *bufio.Reader, limit int) (string, error) {
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		b.Write(chunk)
		if b.Len() > limit {
			return "", fmt.Errorf("an answer line longer than %d bytes", maxListLine)
		}
		if err == nil {
			return b.String(), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
}

// TrailingLiteral reports a response line that ends in "{n}": n bytes
// follow (RFC 3501 §4.3; servers send no LITERAL+ form).
func TrailingLiteral(line string) (int64, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(line[i+1:len(line)-1], 10, 64)
	return n, err == nil && n >= 0
}

// parseListLine reads "(attrs) delim name [extended data]".
func parseListLine(s string) (listEntry, error) {
	var e listEntry
	if !strings.HasPrefix(s, "(") {
		return e, fmt.Errorf("LIST: no attribute list in %q", s)
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return e, fmt.Errorf("LIST: unclosed attribute list in %q", s)
	}
	for _, a := range strings.Fields(s[1:end]) {
		e.attrs = append(e.attrs, imap.MailboxAttr(a))
	}
	rest := strings.TrimLeft(s[end+1:], " ")
	// The delimiter: NIL or a quoted character.
	_, rest, err := parseAString(rest)
	if err != nil {
		return e, err
	}
	e.name, _, err = parseAString(strings.TrimLeft(rest, " "))
	return e, err
}

// parseAString reads a quoted string, an inlined literal or an atom (NIL
// reads as ""), and returns it and what follows.
func parseAString(s string) (string, string, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), s[i+1:], nil
			default:
				b.WriteByte(s[i])
			}
		}
		return "", "", fmt.Errorf("LIST: unclosed quoted string in %q", s)
	case strings.HasPrefix(s, "\x00{"):
		end := strings.IndexByte(s, '}')
		n, err := strconv.Atoi(s[2:max(end, 2)])
		if end < 0 || err != nil || end+1+n > len(s) {
			return "", "", fmt.Errorf("LIST: bad literal in %q", s)
		}
		return s[end+1 : end+1+n], s[end+1+n:], nil
	}
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	if s[:end] == "" {
		return "", "", fmt.Errorf("LIST: no name in %q", s)
	}
	if strings.EqualFold(s[:end], "NIL") {
		return "", s[end:], nil
	}
	return s[:end], s[end:], nil
}

package gmailtest

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/mutf7"
)

// What the emulator does with writes, as Gmail does (the same pages as
// the package comment, and
// https://developers.google.com/workspace/gmail/imap/imap-extensions#access_to_gmail_labels_x-gm-labels):
//   - APPEND to a label's folder stores a message with that label, so it
//     is also in All Mail; APPEND to All Mail stores one without labels
//     (archived); to Spam or Trash, one that All Mail does not list.
//   - STORE +X-GM-LABELS adds labels to a message, which then shows in
//     each new label's folder, with the same X-GM-MSGID.
//   - CREATE makes a label.
var (
	appendCmd = regexp.MustCompile(`(?i)^(\S+) APPEND ("(?:[^"\\]|\\.)*"|\S+)(?: \(([^)]*)\))?(?: "([^"]*)")? \{(\d+)(\+?)\}\r\n$`)
	createCmd = regexp.MustCompile(`(?i)^(\S+) CREATE ("(?:[^"\\]|\\.)*"|\S+)\r\n$`)
	storeCmd  = regexp.MustCompile(`(?i)^(\S+) UID STORE (\S+) \+X-GM-LABELS(?:\.SILENT)? \((.*)\)\r\n$`)
)

// labelOf is the label a folder stands for ("" for All Mail).
func labelOf(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return `\Inbox`
	}
	for _, f := range system {
		if f.name == folder {
			return f.label
		}
	}
	return folder
}

// write handles the commands that change the account. handled is false
// for any other line, which the in-process server answers.
func (s *Server) write(line string, n int64, br *bufio.Reader, c net.Conn, wmu *sync.Mutex, selected string) (answer string, handled bool, err error) {
	if m := appendCmd.FindStringSubmatch(line); m != nil {
		if m[6] == "" { // a synchronising literal waits for the go-ahead
			wmu.Lock()
			_, err = io.WriteString(c, "+ Ready for literal data\r\n")
			wmu.Unlock()
			if err != nil {
				return "", true, err
			}
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			return "", true, err
		}
		if rest, err := br.ReadString('\n'); err != nil || strings.TrimSpace(rest) != "" {
			return "", true, fmt.Errorf("APPEND: more than one message (%q, %v)", rest, err)
		}
		folder, _ := mutf7.Decode(unquote(m[2]))
		return s.appendMsg(m[1], folder, m[3], m[4], raw), true, nil
	}
	if m := createCmd.FindStringSubmatch(line); m != nil {
		folder, _ := mutf7.Decode(unquote(m[2]))
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.createLocked(folder, ""); err != nil {
			return m[1] + " NO " + err.Error() + "\r\n", true, nil
		}
		return m[1] + " OK Success\r\n", true, nil
	}
	if m := storeCmd.FindStringSubmatch(line); m != nil {
		return s.storeLabels(m[1], m[2], m[3], selected), true, nil
	}
	return "", false, nil
}

func (s *Server) appendMsg(tag, folder, flagList, date string, raw []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.boxes[folder]; !ok {
		return tag + " NO [TRYCREATE] Folder doesn't exist.\r\n"
	}
	var flags []imap.Flag
	for _, f := range strings.Fields(flagList) {
		flags = append(flags, imap.Flag(f))
	}
	t := time.Now()
	if date != "" {
		if d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", date); err == nil {
			t = d
		}
	}
	var labels []string
	if l := labelOf(folder); l != "" {
		labels = append(labels, l)
	}
	_, at, err := s.add(raw, t, flags, labels)
	if err != nil {
		return tag + " NO " + err.Error() + "\r\n"
	}
	d := at[folder]
	s.Appends++
	return fmt.Sprintf("%s OK [APPENDUID %d %d] (Success)\r\n", tag, d.UIDValidity, d.UID)
}

// storeLabels adds labels to the selected folder's messages in set.
func (s *Server) storeLabels(tag, set, list, selected string) string {
	labels, err := splitLabels(list)
	if err != nil {
		return tag + " BAD " + err.Error() + "\r\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, ok := s.boxes[selected]
	if !ok {
		return tag + " BAD no folder selected\r\n"
	}
	var out strings.Builder
	for i, m := range msgs {
		uid := uint32(i + 1)
		if !inSet(set, uid, uint32(len(msgs))) {
			continue
		}
		for _, l := range labels {
			if _, err := s.label(m, l); err != nil {
				return tag + " NO " + err.Error() + "\r\n"
			}
		}
		s.LabelStores++
		fmt.Fprintf(&out, "* %d FETCH (UID %d X-GM-LABELS (%s))\r\n", uid, uid, strings.Join(quoteLabels(m.Labels), " "))
	}
	return out.String() + tag + " OK Success\r\n"
}

// splitLabels reads a list of labels: atoms (\Inbox) and quoted strings
// in modified UTF-7.
func splitLabels(list string) ([]string, error) {
	var out []string
	for s := strings.TrimSpace(list); s != ""; s = strings.TrimSpace(s) {
		var l string
		if s[0] == '"' {
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, fmt.Errorf("unclosed quoted label in %q", list)
			}
			l, s = unquote(s[:end+1]), s[end+1:]
		} else {
			l, s, _ = strings.Cut(s, " ")
		}
		if d, err := mutf7.Decode(l); err == nil {
			l = d
		}
		out = append(out, l)
	}
	return out, nil
}

// quoteLabels writes labels as X-GM-LABELS lists them: system labels as
// atoms, user labels as quoted modified UTF-7 (which holds no quote or
// backslash to escape).
func quoteLabels(labels []string) []string {
	var out []string
	for _, l := range labels {
		if strings.HasPrefix(l, `\`) {
			out = append(out, l)
		} else {
			out = append(out, `"`+mutf7.Encode(l)+`"`)
		}
	}
	return out
}

// Messages returns the account's messages, each once (by X-GM-MSGID),
// in the order they were added.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint64]bool{}
	var out []*Message
	for _, box := range s.boxes {
		for _, m := range box {
			if !seen[m.MsgID] {
				seen[m.MsgID] = true
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Message) int { return cmp.Compare(a.MsgID, b.MsgID) })
	return out
}

// Raw is the message's bytes.
func (m *Message) Raw() []byte { return m.raw }

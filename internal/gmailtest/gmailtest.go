// Package gmailtest is a Gmail emulator for the tests: an IMAP server that
// shows labels as folders the way Gmail does, and speaks the part of
// Gmail's IMAP extensions mailferry reads.
//
// go-imap's in-process server (imapmemserver) keeps the mailboxes and
// answers the standard commands; a front on each connection adds what
// Gmail adds. It follows Gmail's documentation:
//
//   - https://developers.google.com/workspace/gmail/imap/imap-extensions:
//     X-GM-EXT-1 in the CAPABILITY answer; the special-use attributes of
//     LIST (\All "[Gmail]/All Mail", \Drafts, \Important, \Sent "[Gmail]/
//     Sent Mail", \Junk "[Gmail]/Spam", \Flagged "[Gmail]/Starred", \Trash);
//     X-GM-MSGID and X-GM-LABELS as FETCH items, system labels written
//     \Inbox, \Sent, \Draft, \Important, \Starred, user labels as modified
//     UTF-7 astrings.
//   - https://support.google.com/mail/answer/7190 (labels are shown as
//     folders; a message with several labels is in each label's folder)
//     and https://support.google.com/mail/answer/6576 (an archived message
//     loses the Inbox label and stays in All Mail): a message is listed in
//     All Mail and in the folder of each of its labels, with its own UID
//     in each and one X-GM-MSGID; Spam and Trash are not in All Mail.
//
// imapmemserver drops special-use attributes (the front adds them) and
// re-serialises messages (docs/library-audit.md, §1.5 and §0 #12):
// fixtures should be well-formed CRLF messages.
package gmailtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/internal/testnet"
)

// The folders of a Gmail account in English, with their attributes.
const (
	AllMail   = "[Gmail]/All Mail"
	Drafts    = "[Gmail]/Drafts"
	Important = "[Gmail]/Important"
	Sent      = "[Gmail]/Sent Mail"
	Spam      = "[Gmail]/Spam"
	Starred   = "[Gmail]/Starred"
	Trash     = "[Gmail]/Trash"
)

var system = []struct{ name, attr, label string }{
	{AllMail, `\All`, ""}, {Drafts, `\Drafts`, `\Draft`}, {Important, `\Important`, `\Important`},
	{Sent, `\Sent`, `\Sent`}, {Spam, `\Junk`, `\Spam`}, {Starred, `\Flagged`, `\Starred`}, {Trash, `\Trash`, `\Trash`},
}

// Server is one emulated account.
type Server struct {
	Addr string // where clients connect (plain IMAP, LOGIN)

	user *imapmemserver.User
	mu   sync.Mutex
	// boxes lists each folder's messages in UID order (UIDs are 1, 2, ...:
	// the emulator never expunges).
	boxes map[string][]*Message
	attrs map[string]string // folder: its special-use attribute
	// hidden folders are left out of LIST, as a label whose "Show in
	// IMAP" box is unticked in Gmail's settings is.
	hidden map[string]bool
	next   uint64
	// LabelFetches counts FETCH commands that asked for X-GM-LABELS;
	// Appends, messages appended; LabelStores, messages given labels by
	// STORE +X-GM-LABELS.
	LabelFetches, Appends, LabelStores int
	// BodiesFetched counts the message bodies clients read.
	BodiesFetched int
	// downloads is how many more FETCH commands for bodies are answered
	// (AllowDownloads); negative: no limit.
	downloads int
}

// Mu is the lock LabelFetches is read under.
func (s *Server) Mu() *sync.Mutex { return &s.mu }

// Message is one message of the account.
type Message struct {
	MsgID  uint64
	Labels []string

	raw   []byte
	date  time.Time
	flags []imap.Flag
}

// New starts an account of user with password pass.
func New(t testing.TB, user, pass string) *Server {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pass)
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapSpecialUse: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {}},
		InsecureAuth: true,
	})
	ln := testnet.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s := &Server{user: u, boxes: map[string][]*Message{}, attrs: map[string]string{}, hidden: map[string]bool{}, next: 1_700_000_000_000_000_000, downloads: -1}
	s.create(t, "INBOX", "")
	for _, f := range system {
		s.create(t, f.name, f.attr)
	}
	back := ln.Addr().String()
	s.Addr = testnet.Serve(t, func(c net.Conn) { s.front(c, back) })
	return s
}

func (s *Server) create(t testing.TB, name, attr string) {
	if err := s.createLocked(name, attr); err != nil {
		t.Fatal(err)
	}
}

// createLocked makes folder name, unless it is there.
func (s *Server) createLocked(name, attr string) error {
	if _, ok := s.boxes[name]; ok {
		return nil
	}
	if err := s.user.Create(name, nil); err != nil {
		return err
	}
	s.boxes[name] = nil
	s.attrs[name] = attr
	return nil
}

// folderOf is the folder a label shows as.
func folderOf(label string) string {
	if strings.EqualFold(label, `\Inbox`) {
		return "INBOX"
	}
	for _, f := range system {
		if f.label != "" && strings.EqualFold(label, f.label) {
			return f.name
		}
	}
	return label
}

// Add delivers raw with flags and labels: in All Mail (unless labelled
// \Spam or \Trash) and in each label's folder, a user label's folder made
// if new. A message with no label is an archived one.
func (s *Server) Add(t testing.TB, raw []byte, date time.Time, flags []imap.Flag, labels ...string) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, _, err := s.add(raw, date, flags, labels)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// add is Add with s.mu held; it returns where the message went, by folder.
func (s *Server) add(raw []byte, date time.Time, flags []imap.Flag, labels []string) (*Message, map[string]*imap.AppendData, error) {
	m := &Message{MsgID: s.next, raw: raw, date: date}
	s.next++
	folders := []string{AllMail}
	for _, l := range labels {
		if l == `\Spam` || l == `\Trash` {
			folders = folders[1:]
			break
		}
	}
	for _, l := range labels {
		if l == `\Starred` {
			flags = append(flags, imap.FlagFlagged) // Starred is the \Flagged flag
		}
	}
	m.flags = flags
	at := map[string]*imap.AppendData{}
	for _, f := range folders {
		d, err := s.put(m, f)
		if err != nil {
			return nil, nil, err
		}
		at[f] = d
	}
	for _, l := range labels {
		d, err := s.label(m, l)
		if err != nil {
			return nil, nil, err
		}
		if d != nil {
			at[folderOf(l)] = d
		}
	}
	return m, at, nil
}

// label gives m label l, and so a copy in l's folder (made if new); nil
// when m had it already.
func (s *Server) label(m *Message, l string) (*imap.AppendData, error) {
	for _, had := range m.Labels {
		if strings.EqualFold(had, l) {
			return nil, nil
		}
	}
	m.Labels = append(m.Labels, l)
	f := folderOf(l)
	if err := s.createLocked(f, ""); err != nil {
		return nil, err
	}
	return s.put(m, f)
}

// put appends m's copy to folder.
func (s *Server) put(m *Message, folder string) (*imap.AppendData, error) {
	d, err := s.user.Append(folder, literal{bytes.NewReader(m.raw)}, &imap.AppendOptions{Flags: m.flags, Time: m.date})
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", folder, err)
	}
	s.boxes[folder] = append(s.boxes[folder], m)
	return d, nil
}

// Hide leaves label's folder out of LIST: Gmail's "Show in IMAP" setting
// unticked (https://support.google.com/mail/answer/7190: labels can be
// hidden from IMAP clients).
func (s *Server) Hide(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden[folderOf(label)] = true
}

// AllowDownloads answers n more FETCH commands for message bodies, and
// every one after them as Gmail answers once an account's daily IMAP
// download allowance is spent: "NO [OVERQUOTA] Account exceeded command
// or bandwidth limits." (https://support.google.com/a/answer/1071518 for
// the limit; the answer's words as Gmail sends them are quoted in client
// projects' reports, such as ljmerza/ha-email-sensor#16). n < 0 lifts the
// limit.
func (s *Server) AllowDownloads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloads = n
}

// countBodies counts the messages of folder a body FETCH of set reads.
func (s *Server) countBodies(set, folder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.boxes[folder]
	for i := range msgs {
		if inSet(set, uint32(i+1), uint32(len(msgs))) {
			s.BodiesFetched++
		}
	}
}

// download reports whether one more FETCH for bodies is answered.
func (s *Server) download() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downloads == 0 {
		return false
	}
	if s.downloads > 0 {
		s.downloads--
	}
	return true
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

var (
	selectCmd = regexp.MustCompile(`(?i)^\S+ (?:SELECT|EXAMINE) ("(?:[^"\\]|\\.)*"|\S+)`)
	gmFetch   = regexp.MustCompile(`(?i)^(\S+) (UID )?FETCH (\S+) \(([^)]*X-GM-[^)]*)\)\r?\n$`)
	listLine  = regexp.MustCompile(`^\* LIST \(([^)]*)\) (\S+) (.*)\r\n$`)
	bodyFetch = regexp.MustCompile(`(?i)^(\S+) (?:UID )?FETCH (\S+) .*BODY(?:\.PEEK)?\[\]`)
)

// front relays one client connection to the in-process server, adding
// Gmail's capability and folder attributes, and answering Gmail's FETCH
// items itself.
func (s *Server) front(c net.Conn, back string) {
	defer c.Close()
	b, err := net.Dial("tcp", back)
	if err != nil {
		return
	}
	defer b.Close()
	var wmu sync.Mutex // whole lines to the client, from either side
	go func() {
		defer c.Close()
		br := bufio.NewReader(b)
		for {
			line, n, err := readLine(br)
			if err != nil {
				return
			}
			line = s.rewrite(line)
			wmu.Lock()
			_, err = io.WriteString(c, line)
			if err == nil && n > 0 {
				_, err = io.CopyN(c, br, n)
			}
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(c)
	selected := ""
	for {
		line, n, err := readLine(br)
		if err != nil {
			return
		}
		if m := selectCmd.FindStringSubmatch(line); m != nil {
			selected, _ = mutf7.Decode(unquote(m[1]))
		}
		if answer, handled, err := s.write(line, n, br, c, &wmu, selected); handled {
			if err == nil {
				wmu.Lock()
				_, err = io.WriteString(c, answer)
				wmu.Unlock()
			}
			if err != nil {
				return
			}
			continue
		}
		if m := bodyFetch.FindStringSubmatch(line); m != nil && s.download() {
			s.countBodies(m[2], selected)
		} else if m != nil {
			wmu.Lock()
			_, err = io.WriteString(c, m[1]+" NO [OVERQUOTA] Account exceeded command or bandwidth limits.\r\n")
			wmu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		if m := gmFetch.FindStringSubmatch(line); m != nil {
			wmu.Lock()
			_, err = io.WriteString(c, s.answer(m[1], m[2] != "", m[3], m[4], selected))
			wmu.Unlock()
			if err != nil {
				return
			}
			continue
		}
		// The line first: a client waits for the server's "+" before it
		// sends a synchronising literal.
		if _, err := io.WriteString(b, line); err != nil {
			return
		}
		if _, err := io.CopyN(b, br, n); err != nil {
			return
		}
	}
}

// readLine reads a line and the size of the literal it announces, if it
// ends in one.
func readLine(br *bufio.Reader) (line string, literal int64, err error) {
	line, err = br.ReadString('\n')
	if err != nil {
		return "", 0, err
	}
	t := strings.TrimRight(line, "\r\n")
	if i := strings.LastIndexByte(t, '{'); i >= 0 && strings.HasSuffix(t, "}") {
		if n, perr := strconv.ParseInt(strings.TrimSuffix(t[i+1:len(t)-1], "+"), 10, 64); perr == nil {
			literal = n
		}
	}
	return line, literal, nil
}

// rewrite adds X-GM-EXT-1 to capability lists and Gmail's attributes to
// LIST answers.
func (s *Server) rewrite(line string) string {
	if strings.HasPrefix(line, "* CAPABILITY ") {
		return strings.TrimRight(line, "\r\n") + " X-GM-EXT-1\r\n"
	}
	if i := strings.Index(line, "[CAPABILITY "); i >= 0 {
		if j := strings.IndexByte(line[i:], ']'); j > 0 {
			return line[:i+j] + " X-GM-EXT-1" + line[i+j:]
		}
	}
	if m := listLine.FindStringSubmatch(line); m != nil {
		name, _ := mutf7.Decode(unquote(m[3]))
		s.mu.Lock()
		attr, hidden := s.attrs[name], s.hidden[name]
		s.mu.Unlock()
		if hidden {
			return ""
		}
		if attr != "" && !strings.Contains(m[1], attr) {
			return "* LIST (" + strings.TrimSpace(m[1]+" "+attr) + ") " + m[2] + " " + m[3] + "\r\n"
		}
	}
	return line
}

// answer answers a FETCH of Gmail items (with UID) on the selected folder.
func (s *Server) answer(tag string, byUID bool, set, items, selected string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.LabelFetches++
	msgs, ok := s.boxes[selected]
	if !ok {
		return tag + " BAD no folder selected\r\n"
	}
	var out strings.Builder
	for i, m := range msgs {
		n := uint32(i + 1) // UID and sequence number alike
		if !inSet(set, n, uint32(len(msgs))) {
			continue
		}
		var parts []string
		for _, it := range strings.Fields(strings.ToUpper(items)) {
			switch it {
			case "UID":
				parts = append(parts, fmt.Sprintf("UID %d", n))
			case "X-GM-MSGID":
				parts = append(parts, fmt.Sprintf("X-GM-MSGID %d", m.MsgID))
			case "X-GM-LABELS":
				parts = append(parts, "X-GM-LABELS ("+strings.Join(quoteLabels(m.Labels), " ")+")")
			default:
				return tag + " BAD the emulator answers only UID, X-GM-MSGID and X-GM-LABELS together\r\n"
			}
		}
		if byUID && !strings.Contains(strings.ToUpper(items), "UID") {
			parts = append(parts, fmt.Sprintf("UID %d", n))
		}
		fmt.Fprintf(&out, "* %d FETCH (%s)\r\n", n, strings.Join(parts, " "))
	}
	return out.String() + tag + " OK Success\r\n"
}

// inSet reports whether n is in an IMAP sequence set ("1:*", "3,5:7").
func inSet(set string, n, last uint32) bool {
	num := func(s string) uint32 {
		if s == "*" {
			return last
		}
		v, _ := strconv.ParseUint(s, 10, 32)
		return uint32(v)
	}
	for _, r := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(r, ":")
		lo, hi := num(a), num(a)
		if isRange {
			hi = num(b)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(s[1 : len(s)-1])
	}
	return s
}

package imap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/source"
)

// Gmail shows labels as folders: a message is listed in the folder of
// each of its labels, and every message but Spam and Trash is in All Mail
// (the \All folder), which is the only place a message archived without a
// label is listed. Copying the label folders alone loses that mail;
// copying All Mail as well copies everything twice.
//
// So a Gmail source (one whose server offers X-GM-EXT-1, whatever its
// host name: Google Workspace, a proxy and the test emulator alike) is
// shown as its label folders plus one folder, "Archive" (special use
// \Archive), that lists the messages of All Mail no listed folder holds.
// All Mail itself, Important and Starred are not shown: they repeat what
// the label folders hold (Starred is the \Flagged flag every copy keeps).
// Config.KeepAllMail shows the account as the server lists it instead.
//
// Gmail's documentation, which this follows:
//   - https://developers.google.com/workspace/gmail/imap/imap-extensions
//     (X-GM-EXT-1 in CAPABILITY; the special-use attributes \All,
//     \Important, \Flagged of LIST; X-GM-LABELS in FETCH: a message's
//     labels, system ones as \Inbox, \Sent, \Draft, \Important, \Starred,
//     user ones as modified UTF-7 astrings)
//   - https://support.google.com/mail/answer/6576 (archiving removes the
//     Inbox label; the message stays in All Mail)

// capGmail is Gmail's extension capability.
const capGmail = imap.Cap("X-GM-EXT-1")

// gmailView is how a Gmail account's All Mail is shown.
type gmailView struct {
	archive string          // the shown folder's name
	allMail string          // the \All folder's name
	folders map[string]bool // the folders shown, by name
	roles   map[string]bool // their special-use roles

	// counted is the Archive's UIDs as Count read them, for the List that
	// follows in the same run: Gmail's labels are read once, not twice.
	// List takes them; a view lives for one listing of the folders.
	mu      sync.Mutex
	counted map[imap.UID]bool
	// keywords: labels are keywords, not folders (Config.GmailKeywords);
	// labels then holds All Mail's, by UID, for Archive's messages.
	keywords bool
	labels   map[imap.UID][]string
	// copies is, for each message that more than one shown folder
	// lists, how many do (by X-GM-MSGID); nil until the labels are read.
	copies map[uint64]int
}

// coversAll reports whether labels were read for every message of msgs.
func coversAll(read map[imap.UID]bool, msgs []source.Message) bool {
	for _, m := range msgs {
		if _, uid, err := ParseID(m.ID); err != nil {
			return false
		} else if _, ok := read[uid]; !ok {
			return false
		}
	}
	return true
}

// gmailFolders applies the Gmail view to a folder listing, if the server
// is Gmail and the view is wanted; it remembers what it did for Mailbox
// and List.
func (s *Store) gmailFolders(folders []source.Folder, caps imap.CapSet) []source.Folder {
	var gm *gmailView
	defer func() {
		s.mu.Lock()
		s.gm = gm
		s.mu.Unlock()
	}()
	s.share.reset()
	if !caps.Has(capGmail) || s.Cfg.KeepAllMail {
		return folders
	}
	gm = &gmailView{folders: map[string]bool{}, roles: map[string]bool{}, keywords: s.Cfg.GmailKeywords}
	var out []source.Folder
	for _, f := range folders {
		switch f.SpecialUse {
		case string(imap.MailboxAttrAll):
			gm.allMail = f.Name
			continue
		case mailboxAttrImportant, string(imap.MailboxAttrFlagged):
			continue
		case "":
			if s.Cfg.GmailKeywords && !strings.EqualFold(f.Name, "INBOX") {
				continue // a user label: a keyword on its messages
			}
		}
		gm.folders[f.Name] = true
		gm.roles[f.SpecialUse] = true
		out = append(out, f)
	}
	if gm.allMail == "" {
		gm = nil
		return out
	}
	gm.archive = "Archive"
	for i := 2; gm.folders[gm.archive]; i++ {
		gm.archive = "Archive (" + strconv.Itoa(i) + ")"
	}
	if gm.keywords {
		s.Cfg.Log.Info("Gmail: each message once, in INBOX, Sent, Drafts, Spam, Trash or Archive, its labels as keywords", "folder", gm.archive)
	} else {
		s.Cfg.Log.Info("Gmail: All Mail is copied as the messages no label folder holds", "folder", gm.archive)
	}
	return append(out, source.Folder{Name: gm.archive, SpecialUse: string(imap.MailboxAttrArchive)})
}

// mailboxAttrImportant is RFC 8457's \Important, which go-imap does not name.
const mailboxAttrImportant = `\Important`

// gmail returns the view in force, or nil.
func (s *Store) gmail() *gmailView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gm
}

// shownIn counts the folders the view shows that list a message with
// these labels. A label without a shown folder (one hidden from IMAP in
// Gmail's settings, or \Important) does not count.
func (gm *gmailView) shownIn(labels []string, ns *namespace) int {
	n := 0
	for _, l := range labels {
		switch strings.ToLower(l) {
		case `\inbox`:
			n++
			continue
		case `\sent`:
			if gm.roles[string(imap.MailboxAttrSent)] {
				n++
			}
			continue
		case `\draft`:
			if gm.roles[string(imap.MailboxAttrDrafts)] {
				n++
			}
			continue
		}
		if strings.HasPrefix(l, `\`) {
			continue
		}
		d, err := mutf7.Decode(l)
		if err != nil {
			continue
		}
		if name, ok := ns.FolderName(d); ok && gm.folders[name] {
			n++
		}
	}
	return n
}

// archived returns, for each UID of All Mail, whether the view's other
// folders do not show the message (true: it is the Archive's), reading
// every message's labels. It also notes, for the bodies read once
// (gmailshare.go), how many shown folders hold each message.
func (s *Store) archived(ctx context.Context, gm *gmailView) (map[imap.UID]bool, error) {
	ns, err := s.Namespace(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.gmailFetch(ctx, gm.allMail, true)
	if err != nil {
		return nil, err
	}
	out := make(map[imap.UID]bool, len(entries))
	copies := map[uint64]int{}
	var labels map[imap.UID][]string
	if gm.keywords {
		labels = make(map[imap.UID][]string, len(entries))
	}
	for uid, e := range entries {
		if labels != nil {
			labels[uid] = e.labels
		}
		n := gm.shownIn(e.labels, ns)
		out[uid] = n == 0
		if n > 1 && e.msgID != 0 {
			copies[e.msgID] = n
		}
	}
	gm.mu.Lock()
	first := gm.copies == nil
	gm.copies, gm.labels = copies, labels
	gm.mu.Unlock()
	if first {
		archived := 0
		for _, a := range out {
			if a {
				archived++
			}
		}
		// What plan (and a verbose copy) shows of the account as a whole.
		s.Cfg.Log.Info("Gmail: All Mail read", "messages", len(out), "in_several_folders", len(copies), "in_archive", archived)
	}
	return out, nil
}

// gmailFetch reads UID and X-GM-MSGID (and X-GM-LABELS, if labels) of
// every message of folder, on a connection taken from go-imap, whose
// FETCH parser fails on Gmail's items (docs/library-audit.md, §1.4a).
func (s *Store) gmailFetch(ctx context.Context, folder string, labels bool) (map[imap.UID]gmailEntry, error) {
	raw, _, err := s.rawSelect(ctx, folder, true, "read Gmail labels")
	if err != nil {
		return nil, err
	}
	defer raw.close()
	items := "UID X-GM-MSGID"
	if labels {
		items += " X-GM-LABELS"
	}
	if _, err := io.WriteString(raw.st, "mf2 UID FETCH 1:* ("+items+")\r\n"); err != nil {
		return nil, Transport(fmt.Errorf("fetch Gmail labels: %w", err))
	}
	out := map[imap.UID]gmailEntry{}
	err = readTagged(raw.br, "mf2", func(line string) error {
		uid, e, ok, err := parseGmailFetch(line, labels)
		if err != nil || !ok {
			return err
		}
		out[uid] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch Gmail labels of %q: %w", folder, err)
	}
	return out, nil
}

// quote makes s an IMAP quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// readTagged reads untagged lines, giving each to fn (if not nil), until
// the line tagged tag, and fails unless that says OK.
func readTagged(br *bufio.Reader, tag string, fn func(string) error) error {
	for {
		line, err := readListLine(br)
		if err != nil {
			return Transport(err)
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if !strings.HasPrefix(strings.ToUpper(rest), "OK") {
				return fmt.Errorf("the server answered %q", rest)
			}
			return nil
		}
		if fn != nil {
			if err := fn(line); err != nil {
				return err
			}
		}
	}
}

// gmailEntry is what Gmail's FETCH says of one message.
type gmailEntry struct {
	msgID  uint64
	labels []string
}

// parseLabelsFetch reads "* N FETCH (UID u X-GM-LABELS (l ...))", items
// in any order; ok is false for any other untagged line.
func parseLabelsFetch(line string) (uid imap.UID, labels []string, ok bool, err error) {
	uid, e, ok, err := parseGmailFetch(line, true)
	return uid, e.labels, ok, err
}

// parseGmailFetch reads "* N FETCH (UID u X-GM-MSGID m X-GM-LABELS (l
// ...))", items in any order, X-GM-MSGID optional, X-GM-LABELS required
// when wantLabels; ok is false for any other untagged line.
func parseGmailFetch(line string, wantLabels bool) (uid imap.UID, e gmailEntry, ok bool, err error) {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 4 || f[0] != "*" || !strings.EqualFold(f[2], "FETCH") {
		return 0, e, false, nil
	}
	s, found := strings.CutPrefix(f[3], "(")
	if !found {
		return 0, e, false, fmt.Errorf("FETCH: no item list in %q", line)
	}
	seenLabels := false
	number := func(rest string) (uint64, string, error) {
		num, after, _ := strings.Cut(rest, " ")
		num = strings.TrimSuffix(num, ")")
		if after == "" && strings.HasSuffix(rest, ")") {
			after = ")"
		}
		n, err := strconv.ParseUint(num, 10, 64)
		return n, after, err
	}
	for {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, ")") {
			break
		}
		name, rest, _ := strings.Cut(s, " ")
		switch strings.ToUpper(name) {
		case "UID":
			n, after, perr := number(rest)
			if perr != nil || n == 0 || n > 1<<32-1 {
				return 0, e, false, fmt.Errorf("FETCH: bad UID in %q", line)
			}
			uid, s = imap.UID(n), after
		case "X-GM-MSGID":
			n, after, perr := number(rest)
			if perr != nil {
				return 0, e, false, fmt.Errorf("FETCH: bad X-GM-MSGID in %q", line)
			}
			e.msgID, s = n, after
		case "X-GM-LABELS":
			e.labels, s, err = parseLabelList(rest)
			if err != nil {
				return 0, e, false, fmt.Errorf("FETCH: %w in %q", err, line)
			}
			seenLabels = true
		default:
			return 0, e, false, fmt.Errorf("FETCH: unasked item %q in %q", name, line)
		}
	}
	if uid == 0 || (wantLabels && !seenLabels) {
		return 0, e, false, fmt.Errorf("FETCH: UID or X-GM-LABELS missing in %q", line)
	}
	return uid, e, true, nil
}

// parseLabelList reads "(astring ...)" and returns the labels and what
// follows the list.
func parseLabelList(s string) ([]string, string, error) {
	s, ok := strings.CutPrefix(s, "(")
	if !ok {
		return nil, "", fmt.Errorf("no label list")
	}
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		switch {
		case s == "":
			return nil, "", fmt.Errorf("unclosed label list")
		case s[0] == ')':
			return out, s[1:], nil
		case s[0] == '"' || strings.HasPrefix(s, "\x00{"):
			l, rest, err := parseAString(s)
			if err != nil {
				return nil, "", err
			}
			out, s = append(out, l), rest
		default:
			end := strings.IndexAny(s, " )")
			if end < 0 {
				end = len(s)
			}
			out, s = append(out, s[:end]), s[end:]
		}
	}
}

// keepArchived keeps, of All Mail's messages, those the view's other
// folders do not show.
func (s *Store) keepArchived(ctx context.Context, gm *gmailView, msgs []source.Message) ([]source.Message, error) {
	gm.mu.Lock()
	keep := gm.counted
	gm.counted = nil
	gm.mu.Unlock()
	// Labels read before the listing do for the messages they cover; a
	// message that came since has its labels read now, with all the rest.
	if keep == nil || !coversAll(keep, msgs) {
		var err error
		if keep, err = s.archived(ctx, gm); err != nil {
			return nil, err
		}
	}
	gm.mu.Lock()
	labels := gm.labels
	gm.mu.Unlock()
	out := msgs[:0]
	for _, m := range msgs {
		_, uid, err := ParseID(m.ID)
		if err != nil {
			return nil, err
		}
		if keep[uid] {
			if gm.keywords {
				m.Flags = s.withLabels(m.Flags, labels[uid])
			}
			out = append(out, m)
		}
	}
	return out, nil
}

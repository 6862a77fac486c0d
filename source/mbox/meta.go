package mbox

import (
	"bytes"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/source"
)

// meta is what a message's header says about it.
type meta struct {
	messageID string
	hasMsgID  bool
	date      time.Time // Date header, the fallback for the From_ line
	flags     []string
	labels    []string // X-Gmail-Labels, decoded, in order
	hasLabels bool
	expunged  bool // Thunderbird: deleted, not yet compacted away
	length    int64
	hasLength bool // Content-Length
}

var wordDecoder = mime.WordDecoder{CharsetReader: nil}

// readMeta reads the header fields that carry an mbox message's metadata:
// Google Takeout's X-Gmail-Labels, Thunderbird's X-Mozilla-Status/-Status2/
// -Keys, the Status/X-Status/X-Keywords of mutt and Dovecot, and
// Content-Length. The header bytes themselves are never changed.
func readMeta(hdr []byte) meta {
	var m meta
	var status, xstatus, moz, moz2, mozKeys, keywords string
	var haveMoz bool
	header.Scan(bytes.NewReader(hdr), func(name, v string) bool {
		switch strings.ToLower(name) {
		case "message-id":
			if !m.hasMsgID {
				m.messageID, m.hasMsgID = v, true
			}
		case "date":
			if m.date.IsZero() {
				if d, err := mail.ParseDate(v); err == nil {
					m.date = d
				}
			}
		case "x-gmail-labels":
			m.labels, m.hasLabels = parseLabels(v), true
		case "x-mozilla-status":
			moz, haveMoz = v, true
		case "x-mozilla-status2":
			moz2 = v
		case "x-mozilla-keys":
			mozKeys = v
		case "status":
			status = v
		case "x-status":
			xstatus = v
		case "x-keywords":
			keywords = v
		case "content-length":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				m.length, m.hasLength = n, true
			}
		}
		return true
	})
	var flags []string
	if haveMoz {
		// nsMsgMessageFlags: Read 0x1, Replied 0x2, Marked 0x4,
		// Expunged 0x8, Forwarded 0x1000; Status2: IMAPDeleted 0x200000.
		s, _ := strconv.ParseUint(strings.TrimSpace(moz), 16, 32)
		s2, _ := strconv.ParseUint(strings.TrimSpace(moz2), 16, 32)
		for bit, f := range map[uint64]string{0x1: source.FlagSeen, 0x2: source.FlagAnswered, 0x4: source.FlagFlagged, 0x1000: source.FlagForwarded} {
			if s&bit != 0 {
				flags = append(flags, f)
			}
		}
		if s2&0x200000 != 0 {
			flags = append(flags, source.FlagDeleted)
		}
		m.expunged = s&0x8 != 0
		flags = append(flags, strings.Fields(mozKeys)...)
	} else {
		if strings.ContainsRune(status, 'R') {
			flags = append(flags, source.FlagSeen)
		}
		for _, x := range xStatusFlags {
			if strings.IndexByte(xstatus, x.letter) >= 0 {
				flags = append(flags, x.flag)
			}
		}
	}
	flags = append(flags, strings.FieldsFunc(keywords, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
	if m.hasLabels {
		flags = append(flags, labelFlags(m.labels)...)
	}
	m.flags = source.NormalizeFlags(flags)
	return m
}

// xStatusFlags are the X-Status letters of Dovecot and mutt, in the order
// mailferry writes them.
var xStatusFlags = []xStatusFlag{{'A', source.FlagAnswered}, {'D', source.FlagDeleted}, {'F', source.FlagFlagged}, {'T', source.FlagDraft}}

type xStatusFlag struct {
	letter byte
	flag   string
}

// parseLabels splits X-Gmail-Labels: comma-separated, a label holding a
// comma is quoted, and non-ASCII labels are RFC 2047 encoded words.
func parseLabels(v string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	flush := func() {
		l := strings.TrimSpace(cur.String())
		cur.Reset()
		if l == "" {
			return
		}
		if d, err := wordDecoder.DecodeHeader(l); err == nil {
			l = d
		}
		out = append(out, l)
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case c == ',' && !quoted:
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// Gmail's system labels. Those mapped to "" are states, not folders:
// their meaning is carried as flags or dropped (categories are tabs of
// the inbox, not folders, in Gmail's IMAP too).
var systemLabels = map[string]struct{ folder, specialUse string }{
	"inbox":     {"INBOX", ""},
	"sent":      {"Sent", `\Sent`},
	"drafts":    {"Drafts", `\Drafts`},
	"draft":     {"Drafts", `\Drafts`},
	"spam":      {"Spam", `\Junk`},
	"trash":     {"Trash", `\Trash`},
	"important": {"Important", `\Important`},
	"chat":      {"Chats", ""},
	"starred":   {},
	"opened":    {},
	"unread":    {},
	"archived":  {},
}

// archiveFolder holds Takeout messages whose labels name no folder (mail
// archived out of the inbox), as Gmail's own "All Mail" would.
const archiveFolder = "Archive"

// labelFolders maps labels to folders, in label order without repeats.
func labelFolders(labels []string) (folders []string, specialUse map[string]string) {
	specialUse = map[string]string{}
	seen := map[string]bool{}
	for _, l := range labels {
		folder, use := l, ""
		if sys, ok := systemLabels[strings.ToLower(l)]; ok {
			folder, use = sys.folder, sys.specialUse
		} else if strings.HasPrefix(strings.ToLower(l), "category ") {
			folder = ""
		}
		folder = strings.Trim(folder, "/")
		if folder == "" || seen[folder] {
			continue
		}
		seen[folder] = true
		folders = append(folders, folder)
		if use != "" {
			specialUse[folder] = use
		}
	}
	if len(folders) == 0 {
		folders = []string{archiveFolder}
		specialUse[archiveFolder] = `\Archive`
	}
	return folders, specialUse
}

// labelFlags: "Opened" is read (unless also "Unread"), "Starred" is
// \Flagged, a draft is \Draft.
func labelFlags(labels []string) []string {
	has := map[string]bool{}
	for _, l := range labels {
		has[strings.ToLower(l)] = true
	}
	var out []string
	if has["opened"] && !has["unread"] {
		out = append(out, source.FlagSeen)
	}
	if has["starred"] {
		out = append(out, source.FlagFlagged)
	}
	if has["draft"] || has["drafts"] {
		out = append(out, source.FlagDraft)
	}
	return out
}

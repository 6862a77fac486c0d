package imap

import (
	"strings"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/source"
)

// With gmail_labels: keywords, a Gmail message is copied once and its
// labels travel as IMAP keywords (in Maildir, dovecot-keywords): a user
// label as a keyword of the same name, \Important as $Important. The
// system labels that are folders (\Inbox, \Sent, \Draft, \Spam, \Trash)
// say where the copy goes; \Starred is the \Flagged flag already.

// withLabels adds the keywords of labels to flags.
func (s *Store) withLabels(flags []string, labels []string) []string {
	out := flags
	for _, l := range labels {
		if k := s.labelKeyword(l); k != "" {
			out = append(out, k)
		}
	}
	return source.NormalizeFlags(out)
}

// labelKeyword is the keyword a label travels as, "" for none. A label
// that is not a valid keyword (an IMAP atom: ASCII, no space, no
// ( ) { % * " \ ]) is written in modified UTF-7 with every other
// character not allowed in an atom as "_", and the mapping is logged once
// per run, so a label can be told from its keyword.
func (s *Store) labelKeyword(label string) string {
	if strings.HasPrefix(label, `\`) {
		if strings.EqualFold(label, `\Important`) {
			return "$Important"
		}
		return ""
	}
	name, err := mutf7.Decode(label)
	if err != nil {
		name = label
	}
	k := keywordOf(name)
	if k != name {
		s.mu.Lock()
		if s.keywordsLogged == nil {
			s.keywordsLogged = map[string]bool{}
		}
		first := !s.keywordsLogged[name]
		s.keywordsLogged[name] = true
		s.mu.Unlock()
		if first {
			s.Cfg.Log.Info("Gmail: a label that is not a valid keyword travels as another", "label", name, "keyword", k)
		}
	}
	return k
}

// keywordOf makes a label name an IMAP atom.
func keywordOf(name string) string {
	var b strings.Builder
	for _, c := range []byte(mutf7.Encode(name)) {
		if !AtomChar(c) {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// AtomChar reports whether c may stand in an IMAP atom (RFC 3501
// ATOM-CHAR: printable ASCII but for the atom-specials), which a flag
// keyword is.
func AtomChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`(){%*"\]`, c) < 0
}

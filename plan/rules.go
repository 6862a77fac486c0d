package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/source"
)

// FolderRules choose which source folders are copied and where to.
type FolderRules struct {
	// Include and Exclude are patterns on source folder names, as in IMAP
	// LIST: "*" matches anything, "%" anything but the "/" between levels.
	// With Include set, only matching folders are copied; a folder matching
	// Exclude is never copied.
	Include, Exclude []string
	// Map names the destination of a source folder explicitly.
	Map map[string]string
	// Prefix puts every folder under one destination folder
	// ("Restored/2026-11-26"): INBOX becomes "Restored/2026-11-26/INBOX".
	// Special-use mapping is then off: a restore keeps its names.
	Prefix string
}

// Filter chooses which messages are copied. Messages it leaves out are
// counted (Summary.Filtered), never silently ignored.
type Filter struct {
	MinSize, MaxSize int64     // bytes; 0: no bound
	Since, Before    time.Time // received date (INTERNALDATE, else the Date header); zero: no bound
}

// Active reports whether the filter can leave anything out.
func (f Filter) Active() bool {
	return f.MinSize > 0 || f.MaxSize > 0 || !f.Since.IsZero() || !f.Before.IsZero()
}

// skips reports whether m is filtered out, and whether that could be
// decided from what is known (a date or size not yet known is decided
// later, after source.Describer).
func (f Filter) skips(m source.Message) (skip, decided bool) {
	decided = true
	if m.Size >= 0 {
		if f.MinSize > 0 && m.Size < f.MinSize || f.MaxSize > 0 && m.Size > f.MaxSize {
			return true, true
		}
	} else if f.MinSize > 0 || f.MaxSize > 0 {
		decided = false
	}
	if !f.Since.IsZero() || !f.Before.IsZero() {
		if m.Date.IsZero() {
			return false, false
		}
		if !f.Since.IsZero() && m.Date.Before(f.Since) || !f.Before.IsZero() && !m.Date.Before(f.Before) {
			return true, true
		}
	}
	return false, decided
}

// compilePattern turns an IMAP LIST pattern into a regexp. INBOX is
// case-insensitive in IMAP, so in patterns too.
func compilePattern(p string) (*regexp.Regexp, error) {
	if len(p) >= 5 && strings.EqualFold(p[:5], "INBOX") && (len(p) == 5 || p[5] == '/') {
		p = "INBOX" + p[5:]
	}
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '%':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// NewFolderRules checks r's patterns, for a config file to report them
// before a run.
func NewFolderRules(r FolderRules) (FolderRules, error) {
	_, err := newFolderSelector(r)
	return r, err
}

type folderSelector struct {
	include, exclude []*regexp.Regexp
	patterns         []string // of include, for unmatched
}

// unmatched returns the first include pattern that matches none of
// folders, or "".
func (s *folderSelector) unmatched(folders []source.Folder) string {
	for i, re := range s.include {
		if !slices.ContainsFunc(folders, func(f source.Folder) bool { return re.MatchString(f.Name) }) {
			return s.patterns[i]
		}
	}
	return ""
}

// folderList names folders for an error message: sorted, at most 20.
func folderList(folders []source.Folder) string {
	names := make([]string, len(folders))
	for i, f := range folders {
		names[i] = strconv.Quote(f.Name)
	}
	slices.Sort(names)
	if len(names) > 20 {
		names = append(names[:20], fmt.Sprintf("and %d more", len(names)-20))
	}
	return strings.Join(names, ", ")
}

func newFolderSelector(r FolderRules) (*folderSelector, error) {
	s := &folderSelector{patterns: r.Include}
	for _, list := range []struct {
		pats []string
		out  *[]*regexp.Regexp
	}{{r.Include, &s.include}, {r.Exclude, &s.exclude}} {
		for _, p := range list.pats {
			re, err := compilePattern(p)
			if err != nil {
				return nil, fmt.Errorf("folder pattern %q: %w", p, err)
			}
			*list.out = append(*list.out, re)
		}
	}
	return s, nil
}

func (s *folderSelector) selected(f source.Folder) bool {
	name := f.Name
	match := func(res []*regexp.Regexp) bool {
		for _, re := range res {
			if re.MatchString(name) {
				return true
			}
		}
		return false
	}
	if len(s.include) > 0 && !match(s.include) {
		return false
	}
	return !match(s.exclude)
}

// localRoles are the names clients give special folders in the common
// languages, for servers without SPECIAL-USE (RFC 6154): a folder so named
// is taken to have that role, on either side. Compared case-insensitively
// with the last level of the name.
var localRoles = map[string]string{}

func init() {
	for role, names := range map[string][]string{
		`\Sent`: {"Sent", "Sent Items", "Sent Messages", "Sent Mail", "Gesendet", "Gesendete Elemente", "Gesendete Objekte",
			"Éléments envoyés", "Envoyés", "Messages envoyés", "Elementos enviados", "Enviados", "Posta inviata", "Inviati",
			"Verzonden items", "Verzonden", "Skickat", "Skickade objekt", "Sendt", "Sendte elementer", "Wysłane", "Отправленные", "Itens enviados"},
		`\Drafts`: {"Drafts", "Entwürfe", "Brouillons", "Borradores", "Bozze", "Concepten", "Utkast", "Kladder", "Kopie robocze", "Черновики", "Rascunhos"},
		`\Trash`: {"Trash", "Deleted Items", "Deleted Messages", "Bin", "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte", "Corbeille",
			"Éléments supprimés", "Papelera", "Elementos eliminados", "Cestino", "Posta eliminata", "Prullenbak", "Verwijderde items",
			"Papperskorgen", "Borttagna objekt", "Kosz", "Корзина", "Lixeira", "Itens excluídos"},
		`\Junk`: {"Junk", "Junk E-mail", "Junk Email", "Spam", "Bulk Mail", "Junk-E-Mail", "Courrier indésirable", "Indésirables",
			"Correo no deseado", "Posta indesiderata", "Ongewenste e-mail", "Skräppost", "Спам", "Lixo eletrônico"},
		`\Archive`: {"Archive", "Archives", "Archiv", "Archivo", "Archivio", "Archief", "Arkiv", "Archiwum", "Архив", "Arquivo"},
	} {
		for _, n := range names {
			localRoles[strings.ToLower(n)] = role
		}
	}
}

// roleOf is a folder's special-use role: the one it declares, else the one
// its name suggests (top level only: "Projects/Sent" is just a folder).
func roleOf(f source.Folder) (role string, byName bool) {
	if f.SpecialUse != "" {
		return f.SpecialUse, false
	}
	if f.Name == "INBOX" || strings.Contains(f.Name, "/") {
		return "", false
	}
	r := localRoles[strings.ToLower(f.Name)]
	return r, r != ""
}

package maildir

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/internal/safename"
)

// Layout is how folders map to directories.
type Layout int

const (
	// LayoutMaildirPP is Maildir++ as Dovecot keeps it: the root is INBOX,
	// folder "Sub/Folder" is the directory ".Sub.Folder", and each name part
	// is in modified UTF-7 on disk.
	LayoutMaildirPP Layout = iota
	// LayoutFS is one directory per folder, nested as the names are
	// ("Sub/Folder/{cur,new,tmp}"), with UTF-8 names; the root is INBOX.
	LayoutFS
	// LayoutFlat is OfflineIMAP's default tree: every folder a directory
	// directly under the root, INBOX among them ("INBOX/{cur,new,tmp}"),
	// levels separated by '.' ("Archive.2024"), each name part in modified
	// UTF-7 as the server had it. A root that is itself a maildir is read
	// too.
	LayoutFlat
)

func (l Layout) String() string {
	switch l {
	case LayoutFS:
		return "fs"
	case LayoutFlat:
		return "flat"
	}
	return "maildir++"
}

// ParseLayout reads the value of the ?layout= endpoint option.
func ParseLayout(s string) (Layout, error) {
	switch strings.ToLower(s) {
	case "", "maildir++", "maildirpp", "pp":
		return LayoutMaildirPP, nil
	case "fs":
		return LayoutFS, nil
	case "flat", "offlineimap":
		return LayoutFlat, nil
	}
	return 0, fmt.Errorf("unknown maildir layout %q (want maildir++, fs or flat)", s)
}

// ErrBadFolderName is wrapped when a folder name cannot be stored safely.
var ErrBadFolderName = errors.New("folder name cannot be stored in this maildir")

// checkName rejects names that could escape the root or that the layout
// cannot represent. This is the only gate between a folder name, which may
// come from a remote server, and a path on disk.
func checkName(name string, layout Layout) error {
	if p := safename.Problem(name); p != "" {
		return fmt.Errorf("%w: %s", ErrBadFolderName, p)
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case layout != LayoutFS && strings.Contains(part, "."):
			return fmt.Errorf("%w: %q contains '.', the %s hierarchy separator (use ?layout=fs)", ErrBadFolderName, name, layout)
		case layout == LayoutFS && (part == "cur" || part == "new" || part == "tmp"):
			return fmt.Errorf("%w: %q has a part named %q, which is a maildir subdirectory", ErrBadFolderName, name, part)
		}
	}
	return nil
}

// isInbox reports whether name is the inbox. IMAP treats INBOX
// case-insensitively (RFC 3501 §5.1).
func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// dirOf returns the directory that holds folder name.
func dirOf(root string, layout Layout, name string) (string, error) {
	if isInbox(name) {
		if layout == LayoutFlat {
			return filepath.Join(root, "INBOX"), nil
		}
		return root, nil
	}
	if err := checkName(name, layout); err != nil {
		return "", err
	}
	parts := strings.Split(name, "/")
	if layout == LayoutFS {
		return filepath.Join(append([]string{root}, parts...)...), nil
	}
	for i, p := range parts {
		parts[i] = mutf7.Encode(p)
	}
	if layout == LayoutFlat {
		return filepath.Join(root, strings.Join(parts, ".")), nil
	}
	return filepath.Join(root, "."+strings.Join(parts, ".")), nil
}

// isMaildir reports whether dir holds a cur/ directory. A cur/ that is a
// symbolic link does not count: a tree must not lead reads outside it.
func isMaildir(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, "cur"))
	return err == nil && fi.IsDir()
}

// folderDir is one folder of a tree: its name and its directory.
type folderDir struct{ name, dir string }

// folderDirs lists the folders of the store at root, one name per
// directory and one directory per name. Names are what the directory
// says (modified UTF-7 decoded where it decodes and encodes back the same
// way, raw UTF-8 kept as it is, other bytes made valid); when two
// directories would give one name (".&AOk-" and a raw ".é", or an fs
// layout "Inbox/" beside a root INBOX), the one that name's own
// directory is keeps it and the other gets a suffix, " (2)", so both are
// read and neither is merged into the other.
func folderDirs(root string, layout Layout) (out, renamed []folderDir, links []string, err error) {
	var found []folderDir
	// linked reports, and notes, a folder whose directory, cur/ or new/ is
	// a symbolic link: not followed, left out with a warning.
	linked := func(dir string) bool {
		if err := CheckNoLinks(root, dir); errors.Is(err, ErrSymlink) {
			links = append(links, dir)
			return true
		}
		return false
	}
	if !linked(root) && isMaildir(root) {
		found = append(found, folderDir{"INBOX", root})
	}
	if layout == LayoutFS {
		err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&os.ModeSymlink != 0 {
				if isDirLink(path) {
					links = append(links, path)
				}
				return nil
			}
			if !d.IsDir() || path == root {
				return nil
			}
			switch d.Name() {
			case "cur", "new", "tmp":
				return filepath.SkipDir
			}
			if linked(path) {
				return filepath.SkipDir
			}
			if isMaildir(path) {
				rel, _ := filepath.Rel(root, path)
				parts := strings.Split(filepath.ToSlash(rel), "/")
				for i, p := range parts {
					// mbsync (SubFolders Verbatim) and OfflineIMAP keep
					// IMAP's modified UTF-7 names as they are: a part that
					// is strictly that is decoded, anything else is UTF-8.
					if d, err := mutf7.Decode(p); err == nil && strings.Contains(p, "&") && mutf7.Encode(d) == p {
						parts[i] = d
					} else {
						parts[i] = strings.ToValidUTF8(p, "\uFFFD")
					}
				}
				name := strings.Join(parts, "/")
				// mbsync's "Inbox ~/Mail/INBOX" beside "Path ~/Mail/": the
				// inbox is a folder of the tree, and the root none.
				if isInbox(name) && !isMaildir(root) {
					name = "INBOX"
				}
				found = append(found, folderDir{name, path})
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	} else {
		ents, err := os.ReadDir(root)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, e := range ents {
			n := e.Name()
			switch {
			case layout == LayoutFlat && (n == "" || n[0] == '.' || n == "cur" || n == "new" || n == "tmp"):
				continue
			case layout == LayoutMaildirPP && (len(n) < 2 || n[0] != '.' || n == ".."):
				continue
			}
			if e.Type()&os.ModeSymlink != 0 {
				if isDirLink(filepath.Join(root, n)) {
					links = append(links, filepath.Join(root, n))
				}
				continue
			}
			if !e.IsDir() || linked(filepath.Join(root, n)) || !isMaildir(filepath.Join(root, n)) {
				continue
			}
			parts := strings.Split(strings.TrimPrefix(n, "."), ".")
			if layout == LayoutFlat && isInbox(n) {
				parts = []string{"INBOX"}
			}
			for i, p := range parts {
				// Dovecot writes modified UTF-7; a name that does not decode,
				// or decodes to something that would be written otherwise,
				// was written by another tool and is kept as it is.
				if d, err := mutf7.Decode(p); err == nil && mutf7.Encode(d) == p {
					parts[i] = d
				} else {
					parts[i] = strings.ToValidUTF8(p, "\uFFFD")
				}
			}
			found = append(found, folderDir{strings.Join(parts, "/"), filepath.Join(root, n)})
		}
	}
	// The directory a name would be written to keeps the name; the others
	// are renamed, in the order of their directories, so a run and the
	// next agree.
	own := func(f folderDir) bool {
		d, err := dirOf(root, layout, f.name)
		return err == nil && d == f.dir
	}
	slices.SortStableFunc(found, func(a, b folderDir) int {
		return cmp.Or(-cmp.Compare(boolInt(own(a)), boolInt(own(b))), strings.Compare(a.dir, b.dir))
	})
	taken := map[string]bool{}
	key := func(name string) string {
		if isInbox(name) {
			return "INBOX"
		}
		return name
	}
	for _, f := range found {
		if taken[key(f.name)] {
			base := f.name
			for i := 2; taken[key(f.name)]; i++ {
				f.name = fmt.Sprintf("%s (%d)", base, i)
			}
			renamed = append(renamed, f)
		}
		taken[key(f.name)] = true
		out = append(out, f)
	}
	return out, renamed, links, nil
}

// otherLayouts says which ?layout= would find folders in a tree where
// layout finds none ("" if none would): the hint for a tree written by
// another tool.
func otherLayouts(root string, layout Layout) string {
	var found []string
	for _, l := range []Layout{LayoutMaildirPP, LayoutFlat, LayoutFS} {
		if l == layout {
			continue
		}
		if f, _, _, err := folderDirs(root, l); err == nil && len(f) > 0 {
			found = append(found, "?layout="+l.String())
		}
	}
	if len(found) == 0 {
		return ""
	}
	return "read with " + strings.Join(found, " or ") + " (fs: nested directories; flat: OfflineIMAP's Sub.Folder; maildir++: Dovecot's .Sub.Folder)"
}

// isDirLink reports whether the symbolic link p points at a directory (a
// folder someone linked in; a linked file is no folder).
func isDirLink(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

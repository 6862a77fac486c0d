package plan

import (
	"context"
	"strings"

	"github.com/mailferry/mailferry/source"
)

type folderMap struct{ name, why string }

// listDstFolders lists the destination's folders, retrying as a run does.
func (e *engine) listDstFolders(ctx context.Context) (dst []source.Folder, err error) {
	err = e.retry(ctx, "list destination folders", func() (err error) {
		dst, err = e.dst.Folders(ctx)
		return err
	})
	return dst, err
}

// mapFolders picks each source folder's destination: an explicit map
// entry; else, with a prefix, its name under the prefix; else the
// destination folder with the same special-use role (RFC 6154, or the
// role its name has in a common language, for servers without
// SPECIAL-USE), so "Sent Items" and "Gesendete Elemente" land in "Sent";
// else its own name. dst and err are the destination's folders as
// listDstFolders found them.
func (e *engine) mapFolders(ctx context.Context, folders, dst []source.Folder, err error) (map[string]folderMap, error) {
	out := map[string]folderMap{}
	rules := e.opt.Folders
	byRole := map[string]string{}
	guessed := map[string]string{}
	if err == nil {
		for _, f := range dst {
			role, byName := roleOf(f)
			switch {
			case role == "":
			case !byName && byRole[role] == "":
				byRole[role] = f.Name
			case byName && guessed[role] == "":
				guessed[role] = f.Name
			}
		}
		for role, name := range guessed {
			if byRole[role] == "" {
				byRole[role] = name
			}
		}
	} else if ctx.Err() != nil {
		return nil, ctx.Err()
	} else {
		// Not fatal: without the list, folders keep their names.
		e.opt.Log.Warn("cannot list destination folders; special-use mapping is off", "error", err)
	}
	for _, f := range folders {
		m := folderMap{name: f.Name}
		role, byName := roleOf(f)
		switch to, mapped := rules.Map[f.Name]; {
		case mapped:
			m = folderMap{name: to, why: "folders.map"}
		case rules.Prefix != "":
			m = folderMap{name: strings.TrimSuffix(rules.Prefix, "/") + "/" + f.Name, why: "folders.prefix"}
		case byRole[role] != "" && byRole[role] != f.Name && f.Name != "INBOX":
			m = folderMap{name: byRole[role], why: "special-use " + role}
			if byName {
				m.why += " (by name)"
			}
		}
		out[f.Name] = m
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

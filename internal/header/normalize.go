package header

import "strings"

// NormalizeMessageID returns the canonical form of a Message-ID header
// value, or "" if it holds no identifier:
//
//   - folding and surrounding white space are removed;
//   - if the value has an angle-bracketed part, only the first one counts
//     (dropping comments and trailing junk some relays add);
//   - white space inside is removed (a folded long id);
//   - the part after the last "@" is lower-cased: it is a domain name,
//     case-insensitive; the part before it is kept as it is, since RFC 5322
//     does not make it case-insensitive.
func NormalizeMessageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '>'); j >= 0 {
			v = v[i+1 : i+1+j]
		}
	}
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
	if at := strings.LastIndexByte(v, '@'); at >= 0 {
		v = v[:at] + strings.ToLower(v[at:])
	}
	return v
}

package maildir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/internal/atomicfile"
)

// KeywordsFile is Dovecot's per-folder map from the letters a–z of a
// Maildir file name to IMAP keywords: one "N name" line per keyword, N from
// 0 (letter a) to 25 (letter z).
const KeywordsFile = "dovecot-keywords"

// Keywords is the letter map of one folder. Index i is letter 'a'+i; an
// empty entry is unused.
type Keywords [26]string

// ReadKeywords reads dir's dovecot-keywords. A missing file is an empty map.
// Malformed lines are ignored, as Dovecot does.
func ReadKeywords(dir string) (Keywords, error) {
	var k Keywords
	data, err := os.ReadFile(filepath.Join(dir, KeywordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return k, fmt.Errorf("read keywords: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= len(k) || name == "" {
			continue
		}
		k[i] = name
	}
	return k, nil
}

// Letter returns the letter for keyword, and whether it has one. Keywords
// compare case-insensitively (RFC 3501 §2.3.2).
func (k *Keywords) Letter(keyword string) (byte, bool) {
	for i, n := range k {
		if n != "" && strings.EqualFold(n, keyword) {
			return byte('a' + i), true
		}
	}
	return 0, false
}

// Add gives keyword a letter if it has none. It reports whether the map
// changed, and fails when all 26 letters are taken.
func (k *Keywords) Add(keyword string) (changed bool, err error) {
	if _, ok := k.Letter(keyword); ok {
		return false, nil
	}
	for i := range k {
		if k[i] == "" {
			k[i] = keyword
			return true, nil
		}
	}
	return false, fmt.Errorf("keyword %q: all 26 Maildir keyword letters of this folder are in use", keyword)
}

// Write replaces dir's dovecot-keywords atomically (temporary file, fsync,
// rename), so a reader never sees half a file.
func (k *Keywords) Write(dir string) error {
	var b bytes.Buffer
	for i, n := range k {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	return atomicfile.Write(filepath.Join(dir, KeywordsFile), b.Bytes())
}

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
	return WriteFileAtomic(filepath.Join(dir, KeywordsFile), b.Bytes())
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mailferry-tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

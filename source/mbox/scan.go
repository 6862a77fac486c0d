package mbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"
)

// entry is one message of an mbox file, as the index keeps it.
type entry struct {
	Start int64 // the From_ line
	Body  int64 // first byte of the message, after the From_ line
	End   int64 // end of the message, without the blank separator line
	// Quoted counts the body lines that start with ">From ", ">>From ",
	// ...: in an mboxrd file each lost one '>' when it was written.
	Quoted int64
	// CL: the message ended where a valid Content-Length header said
	// (mboxcl2), so From_ lines inside it were not separators, and
	// nothing in it is quoted.
	CL        bool
	Sum       [16]byte // SHA-256 of the raw message bytes, cut to 16
	MessageID string
	HasMsgID  bool
	Date      time.Time
	Flags     []string
	Labels    []string
	HasLabels bool
	Expunged  bool
	// Mine: mailferry wrote the message, behind a block (mine.go) taken
	// off again: Body is after it, and the message is the Declared-Body
	// bytes there, mboxrd quoted. End short of Declared: cut short.
	Mine     bool
	Declared int64
}

// fileIndex is the index of one mbox file: where its messages are, and a
// fingerprint of the bytes it was made from.
type fileIndex struct {
	Version int
	Scanned int64    // bytes indexed: the file's size when last scanned
	Head    [32]byte // SHA-256 of the first fingerprintSize bytes
	Tail    [32]byte // SHA-256 of the fingerprintSize bytes before Scanned
	// DoubleQuoted: a line starting ">>From " was seen, which only an
	// mboxrd writer makes, so the file's quoting can be undone.
	DoubleQuoted bool
	Entries      []entry
}

const (
	indexVersion    = 2
	fingerprintSize = 64 << 10
	maxHeaderBytes  = 1 << 20 // header bytes read for metadata; the message is never cut
)

// errNotMbox: the file does not start with a From_ line.
var errNotMbox = errors.New("not an mbox file: it does not start with a \"From \" separator line")

// fingerprint hashes the first and the last fingerprintSize bytes of the
// first n bytes of f.
func fingerprint(f io.ReaderAt, n int64, count *int64) (head, tail [32]byte, err error) {
	part := func(off, size int64) ([32]byte, error) {
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, off); err != nil {
			return [32]byte{}, err
		}
		*count += size
		return sha256.Sum256(buf), nil
	}
	if head, err = part(0, min(n, fingerprintSize)); err != nil {
		return
	}
	tail, err = part(max(0, n-fingerprintSize), min(n, fingerprintSize))
	return
}

// scanner splits an mbox file into messages in one pass, without holding
// more than a line and a header in memory.
type scanner struct {
	f     *os.File
	size  int64
	idx   *fileIndex
	count *int64 // bytes read, for tests and the log

	cur      *entry
	hash     hash.Hash
	held     []byte // a blank line that may be the separator before the next From_
	inHeader bool
	hdr      []byte
	clEnd    int64 // -1, or the end a valid Content-Length gives
	heldOff  int64 // where held starts
	skip     int64 // the end of mailferry's block: lines before it are not the message's
	mine     []string
}

// scan indexes f from offset from (0, or the start of a From_ line) to
// size, appending to idx.Entries.
func scan(f *os.File, from, size int64, idx *fileIndex, count *int64) error {
	s := &scanner{f: f, size: size, idx: idx, count: count, hash: sha256.New(), clEnd: -1}
	br := bufio.NewReaderSize(io.NewSectionReader(f, from, size-from), 1<<20)
	off := from
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			*count += int64(len(line))
			if perr := s.line(line, off, lineStart); perr != nil {
				return perr
			}
			off += int64(len(line))
			lineStart = line[len(line)-1] == '\n'
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			s.finish(off)
			return nil
		default:
			return err
		}
	}
}

// line handles the bytes of one line, or one piece of a line longer than
// the buffer (lineStart false for the pieces after the first).
func (s *scanner) line(line []byte, off int64, lineStart bool) error {
	if lineStart && isFromLine(line) && (s.clEnd < 0 || off >= s.clEnd) {
		s.finish(off)
		s.cur = &entry{Start: off, Body: off + int64(len(line))}
		if d, ok := fromLineDate(line); ok {
			s.cur.Date = d
		}
		s.hash.Reset()
		s.held, s.inHeader, s.hdr, s.clEnd = s.held[:0], true, s.hdr[:0], -1
		s.readBlock()
		return nil
	}
	if s.cur == nil {
		return errNotMbox
	}
	if off < s.skip {
		return nil // mailferry's block
	}
	if len(s.held) > 0 {
		s.hashAt(s.held, s.heldOff)
		s.held = s.held[:0]
	}
	blank := lineStart && (string(line) == "\n" || string(line) == "\r\n")
	if s.inHeader {
		if len(s.hdr)+len(line) <= maxHeaderBytes {
			s.hdr = append(s.hdr, line...)
		}
		if blank {
			s.inHeader = false
			s.headerDone(off + int64(len(line)))
		}
	}
	if blank {
		if len(s.held) == 0 {
			s.heldOff = off
		}
		s.held = append(s.held, line...)
		return nil
	}
	s.hashAt(line, off)
	if lineStart && line[0] == '>' {
		i := bytes.IndexFunc(line, func(r rune) bool { return r != '>' })
		if i > 0 && bytes.HasPrefix(line[i:], []byte("From ")) {
			s.cur.Quoted++
			if i > 1 {
				s.idx.DoubleQuoted = true
			}
		}
	}
	return nil
}

// headerDone reads the metadata of the current message, and checks its
// Content-Length: trusted only if it ends the message on a line boundary
// right before a separator (or at the end of the file), as mutt does.
func (s *scanner) headerDone(bodyStart int64) {
	m := readMeta(s.hdr)
	c := s.cur
	c.MessageID, c.HasMsgID = m.messageID, m.hasMsgID
	c.Flags, c.Labels, c.HasLabels, c.Expunged = m.flags, m.labels, m.hasLabels, m.expunged
	if c.Date.IsZero() {
		c.Date = m.date
	}
	if c.Mine {
		// The block's flags, and the file's folder: a copy of a Takeout
		// message keeps its X-Gmail-Labels header, not its labels' folders.
		c.Flags, c.HasLabels, c.Expunged = s.mine, false, false
		return
	}
	if m.hasLength && s.validLength(bodyStart+m.length) {
		s.clEnd = bodyStart + m.length
		c.CL = true
	}
}

func (s *scanner) validLength(end int64) bool {
	if end > s.size {
		return false
	}
	if end == s.size {
		return true
	}
	buf := make([]byte, 512)
	n, _ := s.f.ReadAt(buf[:1], end-1)
	if n != 1 || buf[0] != '\n' {
		return false
	}
	n, _ = s.f.ReadAt(buf, end)
	*s.count += int64(n) + 1
	b := buf[:n]
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		b = b[2:]
	case bytes.HasPrefix(b, []byte("\n")):
		b = b[1:]
	}
	if len(b) == 0 {
		return end+int64(n) == s.size
	}
	return isFromLine(b)
}

// hashAt hashes b, found at offset off, as part of the current message:
// of a message mailferry wrote, nothing past its declared end (the line
// end it added to a message without one).
func (s *scanner) hashAt(b []byte, off int64) {
	if c := s.cur; c.Mine && off+int64(len(b)) > c.Declared {
		b = b[:max(0, c.Declared-off)]
	}
	s.hash.Write(b)
}

// readBlock looks for mailferry's block right after the current From_
// line.
func (s *scanner) readBlock() {
	s.skip = -1
	buf := make([]byte, 4096)
	n, _ := s.f.ReadAt(buf, s.cur.Body)
	flags, length, size, ok := parseBlock(buf[:n])
	if !ok {
		return
	}
	*s.count += int64(n)
	c := s.cur
	c.Mine, c.Body = true, c.Body+int64(size)
	c.Declared = c.Body + length
	s.skip, s.clEnd, s.mine = c.Body, c.Declared, flags
}

// finish closes the current message at off, leaving out a held blank
// line: the separator an mbox writer puts before each From_ line.
func (s *scanner) finish(off int64) {
	c := s.cur
	if c == nil {
		return
	}
	if s.inHeader { // no blank line: the whole message is header
		s.inHeader = false
		s.headerDone(off)
	}
	c.End = off - int64(len(s.held))
	if c.Mine && c.Declared <= c.End {
		c.End = c.Declared
	}
	s.held = s.held[:0]
	copy(c.Sum[:], s.hash.Sum(nil))
	s.idx.Entries = append(s.idx.Entries, *c)
	s.cur = nil
}

// unquoter undoes mboxrd quoting: one '>' comes off each line that starts
// with '>'s and "From ".
type unquoter struct {
	br        *bufio.Reader
	lineStart bool
	pending   []byte
}

func newUnquoter(r io.Reader) *unquoter {
	return &unquoter{br: bufio.NewReaderSize(r, 64<<10), lineStart: true}
}

func (u *unquoter) Read(p []byte) (int, error) {
	for len(u.pending) == 0 {
		line, err := u.br.ReadSlice('\n')
		if len(line) > 0 {
			if u.lineStart && line[0] == '>' {
				i := bytes.IndexFunc(line, func(r rune) bool { return r != '>' })
				if i > 0 && bytes.HasPrefix(line[i:], []byte("From ")) {
					line = line[1:]
				}
			}
			u.lineStart = line[len(line)-1] == '\n'
			u.pending = line
			break
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return 0, err
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}

// checkedReader hashes what it reads and fails at the end if the bytes
// are not those indexed: the file was rewritten (compacted, say) since,
// and a copy of other bytes must not be committed.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	want [16]byte
	name string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		var got [16]byte
		copy(got[:], c.h.Sum(nil))
		if got != c.want {
			return n, fmt.Errorf("%s: the message changed since it was listed: %w", c.name, errChanged)
		}
	}
	return n, err
}

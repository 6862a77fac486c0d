package mbox

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/source"
)

// A message mailferry writes into an mbox file (sink/mbox) begins with a
// block of four header lines it adds in front of the message's own:
//
//	Status: RO
//	X-Status: AF
//	X-Keywords: $Forwarded Work
//	X-Mailferry-Length: 5120
//
// The first three carry the flags as mutt, Thunderbird and Dovecot read
// them (Status R is \Seen; X-Status A \Answered, F \Flagged, T \Draft,
// D \Deleted, Dovecot's letters; X-Keywords the keywords). The last says
// how many bytes of the file, after the block, are the message (mboxrd
// quoted), so that the block can be told from a message's own Status
// header, taken off again on reading (the message comes back byte for
// byte, even one without a final line break, which mbox otherwise cannot
// keep), and so that an append cut short by a crash is recognised.

// lengthField names the block's last line.
const lengthField = "X-Mailferry-Length"

var blockRE = regexp.MustCompile(`\AStatus: (R?O?)\nX-Status: ([AFTD]*)\nX-Keywords: ([^\n]*)\n` + lengthField + `: ([0-9]{1,15})\n`)

// Block is the header block written in front of a message of n stored
// bytes with flags.
func Block(flags []string, n int64) []byte {
	flags = source.NormalizeFlags(flags)
	status, xstatus := "", ""
	if slices.Contains(flags, source.FlagSeen) {
		status = "R"
	}
	for _, x := range xStatusFlags {
		if slices.Contains(flags, x.flag) {
			xstatus += string(x.letter)
		}
	}
	keywords := slices.DeleteFunc(flags, func(f string) bool {
		return f == source.FlagSeen || slices.ContainsFunc(xStatusFlags, func(x xStatusFlag) bool { return x.flag == f })
	})
	return fmt.Appendf(nil, "Status: %sO\nX-Status: %s\nX-Keywords: %s\n%s: %d\n", status, xstatus, strings.Join(keywords, " "), lengthField, n)
}

// parseBlock reads a block at the start of b: the flags it gives, the
// stored length it declares, and its own length.
func parseBlock(b []byte) (flags []string, n int64, size int, ok bool) {
	m := blockRE.FindSubmatch(b)
	if m == nil {
		return nil, 0, 0, false
	}
	if bytes.Contains(m[1], []byte("R")) {
		flags = append(flags, source.FlagSeen)
	}
	for _, x := range xStatusFlags {
		if bytes.IndexByte(m[2], x.letter) >= 0 {
			flags = append(flags, x.flag)
		}
	}
	flags = append(flags, strings.Fields(string(m[3]))...)
	n, err := strconv.ParseInt(string(m[4]), 10, 64)
	return source.NormalizeFlags(flags), n, len(m[0]), err == nil
}

// Quote is msg as an mboxrd file stores it: each line that starts with
// '>'s and "From " gets one more '>'.
func Quote(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+64)
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		line := msg
		if i >= 0 {
			line = msg[:i+1]
		}
		msg = msg[len(line):]
		if j := bytes.IndexFunc(line, func(r rune) bool { return r != '>' }); j >= 0 && bytes.HasPrefix(line[j:], []byte("From ")) {
			out = append(out, '>')
		}
		out = append(out, line...)
	}
	return out
}

// Tail is what an appender needs to know of an mbox file: its size, the
// messages of each content hash it holds (IDs count byte-identical twins),
// and, if its last message is one mailferry was writing when it was
// stopped, where that message starts, to cut it off.
type Tail struct {
	Size  int64
	Twins map[[16]byte]int
	Torn  bool
	Cut   int64
}

// ReadTail scans the mbox file at path (a missing or empty file is empty).
func ReadTail(path string) (Tail, error) {
	t := Tail{Twins: map[[16]byte]int{}}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return t, err
	}
	t.Size = fi.Size()
	if t.Size == 0 {
		return t, nil
	}
	var idx fileIndex
	var count int64
	if err := scan(f, 0, t.Size, &idx, &count); err != nil {
		return t, fmt.Errorf("mbox %q: %w", path, err)
	}
	for _, e := range idx.Entries {
		t.Twins[e.Sum]++
	}
	last := idx.Entries[len(idx.Entries)-1]
	switch {
	case last.Mine && last.Declared > last.End:
		// The message is not all there.
		t.Torn, t.Cut = true, last.Start
		t.Twins[last.Sum]--
	case last.Mine:
		// All there: anything after its line ends is the start of an
		// append that did not get as far as its block.
		end := last.Declared + 2
		b := make([]byte, 1)
		if last.Declared > last.Body {
			if _, err := f.ReadAt(b, last.Declared-1); err != nil {
				return t, err
			}
			if b[0] == '\n' {
				end--
			}
		}
		if t.Size > end {
			t.Torn, t.Cut = true, end
		}
	default:
		// A From_ line and part of a block, as an append would leave it
		// had it been cut short within its first write.
		rest := make([]byte, min(t.Size-last.Body, 4096))
		if _, err := f.ReadAt(rest, last.Body); err != nil {
			return t, err
		}
		if partialBlock(rest) {
			t.Torn, t.Cut = true, last.Start
			t.Twins[last.Sum]--
		}
	}
	return t, nil
}

// partialBlock reports whether b, all that follows a From_ line up to the
// end of the file, is a beginning of mailferry's block and no more.
func partialBlock(b []byte) bool {
	if len(b) == 0 {
		return false // a message of 0 bytes, as any writer may leave one
	}
	want := []string{"Status: ", "X-Status: ", "X-Keywords: ", lengthField + ": "}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > len(want) {
		return false
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) && !strings.HasPrefix(want[i], l) {
			return false
		}
	}
	return true
}

// ID is the ID a message gets in a file that already holds twins others
// with the same content hash.
func ID(sum [16]byte, twins int) string {
	id := fmt.Sprintf("%x", sum)
	if twins > 0 {
		id += "." + strconv.Itoa(twins)
	}
	return id
}

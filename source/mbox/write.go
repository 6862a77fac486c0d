package mbox

import (
	"bufio"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// TreePath is the file that holds folder in a Thunderbird-style tree at
// root, the inverse of how a tree is read: "A/B" is "A.sbd/B", and INBOX
// is "Inbox".
func TreePath(root, folder string) string {
	parts := strings.Split(folder, "/")
	if parts[0] == "INBOX" {
		parts[0] = "Inbox"
	}
	for i := range parts[:len(parts)-1] {
		parts[i] += ".sbd"
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// Append writes msg to w as one mboxrd message: a From_ line with sender
// and date, the message with each line that starts with '>'s and "From "
// given one more '>', a line end if the message lacks a final one, and the
// blank separator line. Read back (as mboxrd), the message is the same
// bytes, but for that added final line end, which mbox cannot do without.
func Append(w io.Writer, sender string, date time.Time, msg []byte) error {
	bw := bufio.NewWriter(w)
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	bw.WriteString("From " + sender + " " + date.UTC().Format("Mon Jan _2 15:04:05 -0700 2006") + "\n")
	q := Quote(msg)
	bw.Write(q)
	if len(q) > 0 && q[len(q)-1] != '\n' {
		bw.WriteByte('\n')
	}
	bw.WriteString("\n")
	return bw.Flush()
}

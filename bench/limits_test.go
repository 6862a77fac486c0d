package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sys/unix"

	"github.com/mailferry/mailferry/internal/dovecottest"
)

// oneByOne copies every folder of srcUser to dstUser through addr the way
// imapsync does: list a folder's UIDs, then for each message a UID FETCH of
// its body, flags and date, then an APPEND, waiting for each answer.
func oneByOne(addr, srcUser, dstUser string) error {
	src, err := dialIMAP(addr, srcUser)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := dialIMAP(addr, dstUser)
	if err != nil {
		return err
	}
	defer dst.Close()
	boxes, err := src.List("", "*", nil).Collect()
	if err != nil {
		return err
	}
	for _, b := range boxes {
		if slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		if _, err := src.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		if b.Mailbox != "INBOX" {
			dst.Create(b.Mailbox, nil).Wait()
		}
		list, err := src.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			return err
		}
		for _, l := range list {
			msgs, err := src.Fetch(imap.UIDSetNum(l.UID), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil || len(msgs) != 1 {
				return fmt.Errorf("fetch %s %d: %d messages, %v", b.Mailbox, l.UID, len(msgs), err)
			}
			m := msgs[0]
			var body []byte
			for _, v := range m.BodySection {
				body = v.Bytes
			}
			var flags []imap.Flag
			for _, f := range m.Flags {
				if f != `\Recent` {
					flags = append(flags, f)
				}
			}
			cmd := dst.Append(b.Mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			cmd.Write(body)
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				return err
			}
		}
	}
	return nil
}

func fetchAll(t testing.TB, srv *dovecottest.Server, user string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(folders))
	for _, f := range folders {
		f := f.mailbox
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := imapClient(t, srv, user)
			defer c.Close()
			if _, err := c.Select(f, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				errs <- err
				return
			}
			fc := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			for m := fc.Next(); m != nil; m = fc.Next() {
				for it := m.Next(); it != nil; it = m.Next() {
					if b, ok := it.(imapclient.FetchItemDataBodySection); ok {
						io.Copy(io.Discard, b.Literal)
					}
				}
			}
			errs <- fc.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deliverAll writes the corpus into a fresh Maildir the way a safe
// delivery must, from memory and with nothing else to do: the floor the
// disk sets for any tool that fsyncs what it stores.
func deliverAll(dir string, c *corpus) error {
	for _, sub := range []string{"tmp", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	cur, err := os.Open(filepath.Join(dir, "cur"))
	if err != nil {
		return err
	}
	defer cur.Close()
	const batch = 16
	for i := 0; i < len(c.msgs); i += batch {
		var names []string
		for k := i; k < min(i+batch, len(c.msgs)); k++ {
			tmp := filepath.Join(dir, "tmp", strconv.Itoa(k))
			if err := os.WriteFile(tmp, c.msgs[k].content, 0o600); err != nil {
				return err
			}
			names = append(names, tmp)
		}
		if err := unix.Syncfs(int(cur.Fd())); err != nil {
			return err
		}
		for _, tmp := range names {
			if err := os.Rename(tmp, filepath.Join(dir, "cur", filepath.Base(tmp)+":2,S")); err != nil {
				return err
			}
		}
		if err := cur.Sync(); err != nil {
			return err
		}
	}
	return nil
}

func retrAll(srv *dovecottest.Server, user string, n int) error {
	c, err := net.Dial("tcp", dovecottest.Addr(srv.POP3Port))
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	line := func() string { l, _ := r.ReadString('\n'); return l }
	line()
	fmt.Fprintf(w, "USER %s\r\nPASS %s\r\n", user, dovecottest.Password)
	w.Flush()
	line()
	if l := line(); !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("login: %s", l)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "RETR %d\r\n", i)
		w.Flush()
		if l := line(); !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("RETR %d: %s", i, l)
		}
		for {
			l, err := r.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return err
			}
			if string(l) == ".\r\n" {
				break
			}
		}
	}
	fmt.Fprint(w, "QUIT\r\n")
	return w.Flush()
}

func appendAll(t testing.TB, srv *dovecottest.Server, user string, c *corpus) error {
	byMailbox := c.byMailbox()
	var wg sync.WaitGroup
	errs := make(chan error, len(byMailbox))
	for mbox, msgs := range byMailbox {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := imapClient(t, srv, user)
			defer cl.Close()
			if mbox != "INBOX" {
				cl.Create(mbox, nil).Wait()
			}
			var cmds []*imapclient.AppendCommand
			for _, m := range msgs {
				cmd := cl.Append(mbox, int64(len(m.content)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: m.date})
				cmd.Write(m.content)
				cmd.Close()
				cmds = append(cmds, cmd)
				if len(cmds) >= 64 { // a window of APPENDs in flight
					if _, err := cmds[0].Wait(); err != nil {
						errs <- err
						return
					}
					cmds = cmds[1:]
				}
			}
			for _, cmd := range cmds {
				if _, err := cmd.Wait(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// rawAppendAll appends the corpus to user's mailboxes over one plain
// connection per folder, writing every command at once with LITERAL+
// literals, batch messages per command, while another goroutine reads the
// answers.
func rawAppendAll(addr, user string, c *corpus, batch int) error {
	byMailbox := c.byMailbox()
	errs := make(chan error, len(byMailbox))
	for mbox, msgs := range byMailbox {
		in := make(chan benchMsg, len(msgs))
		for _, m := range msgs {
			in <- m
		}
		close(in)
		go func() { errs <- rawAppend(addr, user, mbox, in, batch) }()
	}
	var err error
	for range byMailbox {
		err = errors.Join(err, <-errs)
	}
	return err
}

// fetchIntoAppend is IMAP→IMAP as a plain client does it at best: for
// each folder at once, a ranged FETCH of every body on one connection,
// each body handed as it arrives to a MULTIAPPEND writer (rawAppend) on
// another. Both servers' work shares the machine, as in mailferry's copy.
func fetchIntoAppend(t testing.TB, srv *dovecottest.Server, srcUser, dstUser string, batch int) error {
	errs := make(chan error, 2*len(folders))
	for _, f := range folders {
		in := make(chan benchMsg, 64)
		go func() { errs <- rawAppend(dovecottest.Addr(srv.IMAPPort), dstUser, f.mailbox, in, batch) }()
		go func() {
			defer close(in)
			c := imapClient(t, srv, srcUser)
			defer c.Close()
			if _, err := c.Select(f.mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				errs <- err
				return
			}
			fc := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			for m := fc.Next(); m != nil; m = fc.Next() {
				var bm benchMsg
				for it := m.Next(); it != nil; it = m.Next() {
					switch it := it.(type) {
					case imapclient.FetchItemDataInternalDate:
						bm.date = it.Time
					case imapclient.FetchItemDataBodySection:
						bm.content, _ = io.ReadAll(it.Literal)
					}
				}
				in <- bm
			}
			errs <- fc.Close()
		}()
	}
	var err error
	for range 2 * len(folders) {
		err = errors.Join(err, <-errs)
	}
	return err
}

// rawAppend appends what comes from msgs to mailbox, batch messages a
// command, each command written as soon as its messages are in.
func rawAppend(addr, user, mailbox string, msgs <-chan benchMsg, batch int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriterSize(conn, 64<<10)
	// answer reads up to the tagged answer to tag; any other tag's must
	// be OK.
	answer := func(tag string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if l[0] == '*' {
				continue
			}
			if t, _, _ := strings.Cut(l, " "); t == tag || strings.HasPrefix(t, "a") {
				if !strings.HasPrefix(l, t+" OK") {
					return errors.New(strings.TrimSpace(l))
				}
				if t == tag {
					return nil
				}
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil { // greeting
		return err
	}
	// The test password holds a space and 8-bit text: a literal.
	fmt.Fprintf(w, "l LOGIN %s {%d+}\r\n%s\r\nc CREATE %q\r\n", user, len(dovecottest.Password), dovecottest.Password, mailbox)
	w.Flush()
	if err := answer("l"); err != nil {
		return err
	}
	answer("c") // INBOX exists already
	// The answers are read as they come; the last, to a NOOP after every
	// APPEND, ends the wait.
	done := make(chan error, 1)
	go func() { done <- answer("e") }()
	var cmds int
	send := func(ms []benchMsg) {
		fmt.Fprintf(w, "a%d APPEND %q", cmds, mailbox)
		cmds++
		for _, m := range ms {
			fmt.Fprintf(w, " (\\Seen) %q {%d+}\r\n", m.date.Format("02-Jan-2006 15:04:05 -0700"), len(m.content))
			w.Write(m.content)
		}
		w.WriteString("\r\n")
	}
	var pending []benchMsg
	for m := range msgs {
		if pending = append(pending, m); len(pending) == batch {
			send(pending)
			pending = pending[:0]
		}
	}
	if len(pending) > 0 {
		send(pending)
	}
	w.WriteString("e NOOP\r\n")
	if err := w.Flush(); err != nil {
		return err
	}
	return <-done
}

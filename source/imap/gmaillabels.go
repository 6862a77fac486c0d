package imap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/source"
)

// IsGmail reports whether the server offers Gmail's extension (X-GM-EXT-1),
// the mark of Gmail and Google Workspace whatever the host name.
func (s *Store) IsGmail(ctx context.Context) (bool, error) {
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return false, err
	}
	defer s.Pool.Put(cn, false)
	return cn.Client().Caps().Has(capGmail), nil
}

// GmailLabel is the label a folder of a Gmail account stands for, by its
// special use: \Inbox for INBOX, \Sent, \Draft, \Spam, \Trash, \Starred
// and \Important for those folders, the folder's server name for a user
// label; "" for All Mail, whose messages need no label to be in it.
// https://developers.google.com/workspace/gmail/imap/imap-extensions#access_to_gmail_labels_x-gm-labels
func GmailLabel(mailbox, specialUse string) string {
	if strings.EqualFold(mailbox, "INBOX") {
		return `\Inbox`
	}
	switch specialUse {
	case string(imap.MailboxAttrAll):
		return ""
	case string(imap.MailboxAttrSent):
		return `\Sent`
	case string(imap.MailboxAttrDrafts):
		return `\Draft`
	case string(imap.MailboxAttrJunk):
		return `\Spam`
	case string(imap.MailboxAttrTrash):
		return `\Trash`
	case string(imap.MailboxAttrFlagged):
		return `\Starred`
	case mailboxAttrImportant:
		return `\Important`
	}
	return mailbox
}

// AddGmailLabels gives the message id of folder the labels (GmailLabel's
// words) with STORE +X-GM-LABELS: in Gmail a message in several folders
// is one message with several labels, and this is how a second folder
// gets it without a second copy. It runs on a connection taken from
// go-imap, whose parser fails on the X-GM-LABELS answer
// (docs/library-audit.md, §1.4a).
func (s *Store) AddGmailLabels(ctx context.Context, folder, id string, labels ...string) error {
	uidValidity, uid, err := ParseID(id)
	if err != nil {
		return err
	}
	raw, now, err := s.rawSelect(ctx, folder, false, "label a message")
	if err != nil {
		return err
	}
	defer raw.close()
	if now != uidValidity {
		return fmt.Errorf("folder %q message %s: UIDVALIDITY is now %d: %w", folder, id, now, source.ErrMessageNotFound)
	}
	quoted := make([]string, len(labels))
	for i, l := range labels {
		if strings.HasPrefix(l, `\`) {
			quoted[i] = l
		} else {
			quoted[i] = quote(mutf7.Encode(l))
		}
	}
	cmd := fmt.Sprintf("mf2 UID STORE %d +X-GM-LABELS (%s)\r\n", uid, strings.Join(quoted, " "))
	if _, err := io.WriteString(raw.st, cmd); err != nil {
		return Transport(fmt.Errorf("label a message: %w", err))
	}
	if err := readTagged(raw.br, "mf2", nil); err != nil {
		return fmt.Errorf("folder %q message %s: add labels %q: %w", folder, id, labels, err)
	}
	return nil
}

// rawSession is a connection taken from go-imap with a folder selected,
// for the Gmail commands go-imap cannot read the answers to
// (docs/library-audit.md, §1.4a). The connection's timeout runs until
// close.
type rawSession struct {
	st *Stream
	br *bufio.Reader
}

func (r *rawSession) close() {
	r.st.DC.End()
	r.st.Close()
}

// rawSelect takes a connection (what says what for, in errors) and
// SELECTs folder, or EXAMINEs it if readOnly, returning its UIDVALIDITY.
func (s *Store) rawSelect(ctx context.Context, folder string, readOnly bool, what string) (*rawSession, uint32, error) {
	mailbox, err := s.Mailbox(ctx, folder)
	if err != nil {
		return nil, 0, err
	}
	st, err := s.Pool.Detached(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	st.DC.Begin()
	raw := &rawSession{st: st, br: bufio.NewReader(st)}
	verb := "SELECT"
	if readOnly {
		verb = "EXAMINE"
	}
	if _, err := io.WriteString(st, "mf1 "+verb+" "+quote(mutf7.Encode(mailbox))+"\r\n"); err != nil {
		raw.close()
		return nil, 0, Transport(fmt.Errorf("%s %q: %w", strings.ToLower(verb), folder, err))
	}
	var uidValidity uint32
	err = readTagged(raw.br, "mf1", func(line string) error {
		if v, ok := strings.CutPrefix(line, "* OK [UIDVALIDITY "); ok {
			num, _, _ := strings.Cut(v, "]")
			n, _ := strconv.ParseUint(strings.TrimSpace(num), 10, 32)
			uidValidity = uint32(n)
		}
		return nil
	})
	if err != nil {
		raw.close()
		return nil, 0, fmt.Errorf("%s %q: %w", strings.ToLower(verb), folder, err)
	}
	return raw, uidValidity, nil
}

package imap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/header"
	"github.com/mailferry/mailferry/internal/spool"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

// Into Gmail, a message is one message however many folders it is in: a
// folder is a label (https://support.google.com/mail/answer/7190). So
// the first folder a message goes to gets it by APPEND, and every other
// folder by STORE +X-GM-LABELS on that copy, never by a second APPEND
// that would make a second message. A message is the same one when its
// Message-ID and size are: a copy of other bytes under the same
// Message-ID is appended as a message of its own.
//
// The account's messages are found by listing All Mail once, on the
// first Put; the ones this run appends are added as they are. Puts of
// one message into two folders at once wait for each other, so the
// second labels what the first appended.
//
// In the other direction, All Mail is shown as the \Archive folder: a
// source's Archive (mail kept without a folder) goes there unlabelled,
// which is Gmail's archived mail.
type gmailDest struct {
	on      bool              // the server is Gmail's (X-GM-EXT-1)
	allMail string            // the \All folder's name
	roles   map[string]string // folder: special use

	mu      sync.Mutex
	at      map[string]string        // message key: the folder and ID of its copy
	pending map[string]chan struct{} // message key: closed when its APPEND is done
}

// showGmail: into Gmail, All Mail is shown as the \Archive folder (see
// gmailDest).
func (s *Sink) showGmail(folders []source.Folder) {
	if !s.gm.on {
		return
	}
	for i, f := range folders {
		if f.SpecialUse == string(imap.MailboxAttrAll) {
			folders[i].SpecialUse = string(imap.MailboxAttrArchive)
		}
	}
}

// index lists All Mail, with g.mu held, unless done.
func (s *Sink) index(ctx context.Context, g *gmailDest) error {
	if g.at != nil {
		return nil
	}
	folders, err := s.Store.Folders(ctx)
	if err != nil {
		return err
	}
	roles := map[string]string{}
	for _, f := range folders {
		roles[f.Name] = f.SpecialUse
		if f.SpecialUse == string(imap.MailboxAttrAll) {
			g.allMail = f.Name
		}
	}
	at := map[string]string{}
	if g.allMail != "" {
		err := s.Store.List(ctx, g.allMail, func(m source.Message) error {
			if m.MessageIDKnown && m.Size >= 0 {
				if k := gmailKey(m.MessageID, m.Size); k != "" {
					at[k] = g.allMail + "\x00" + m.ID
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list Gmail's All Mail: %w", err)
		}
	}
	g.roles, g.at, g.pending = roles, at, map[string]chan struct{}{}
	return nil
}

// gmailKey is what makes two copies one Gmail message.
func gmailKey(messageID string, size int64) string {
	id := header.NormalizeMessageID(messageID)
	if id == "" {
		return ""
	}
	return id + "\x00" + strconv.FormatInt(size, 10)
}

// putGmail puts a message into a Gmail folder: labels the copy the
// account has, or appends the first.
func (s *Sink) putGmail(ctx context.Context, folder string, m source.Message, sp *spool.Spool) (string, error) {
	id := m.MessageID
	if !m.MessageIDKnown {
		r, err := sp.Reader()
		if err != nil {
			return "", err
		}
		if id, _, err = header.MessageID(r); err != nil {
			return "", fmt.Errorf("read Message-ID: %w", err)
		}
	}
	key := gmailKey(id, sp.Size())
	if key == "" {
		return s.store(ctx, folder, m, sp)
	}
	g := &s.gm
	g.mu.Lock()
	if err := s.index(ctx, g); err != nil {
		g.mu.Unlock()
		return "", err
	}
	for {
		if at, ok := g.at[key]; ok {
			g.mu.Unlock()
			return s.label(ctx, g, at, folder, m, sp)
		}
		wait, busy := g.pending[key]
		if !busy {
			break
		}
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		g.mu.Lock()
	}
	done := make(chan struct{})
	g.pending[key] = done
	g.mu.Unlock()
	dstID, err := s.store(ctx, folder, m, sp)
	g.mu.Lock()
	if err == nil && dstID != "" {
		g.at[key] = folder + "\x00" + dstID
	}
	delete(g.pending, key)
	close(done)
	g.mu.Unlock()
	return dstID, err
}

// label gives the copy at ("folder\x00id") the label of folder.
func (s *Sink) label(ctx context.Context, g *gmailDest, at, folder string, m source.Message, sp *spool.Spool) (string, error) {
	copyFolder, copyID, _ := strings.Cut(at, "\x00")
	role, known := g.roles[folder]
	if !known {
		if err := s.CreateFolder(ctx, folder); err != nil {
			return "", err
		}
	}
	mailbox, err := s.Mailbox(ctx, folder)
	if err != nil {
		return "", err
	}
	l := srcimap.GmailLabel(mailbox, role)
	if l == "" || copyFolder == folder {
		return "", nil // All Mail holds every message; the folder has it
	}
	err = s.AddGmailLabels(ctx, copyFolder, copyID, l)
	if errors.Is(err, source.ErrMessageNotFound) {
		// The copy went away (deleted since the listing): a new one.
		return s.store(ctx, folder, m, sp)
	}
	if err != nil {
		return "", err
	}
	return "", nil
}

package imap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/source"
)

// namespace is how this server spells folder names: a prefix for the
// personal namespace ("INBOX." on Courier-style servers) and a hierarchy
// delimiter.
type namespace struct {
	prefix string
	delim  rune
}

func (s *Store) namespace(ctx context.Context, cn *Conn) (*namespace, error) {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns != nil {
		return ns, nil
	}
	ns = &namespace{delim: '/'}
	err := cn.Do(func() error {
		// A NOOP sent just before, to time a round trip (RoundTrip): the
		// two answers come back together, so it costs no wait of its own.
		begin := time.Now()
		noop := cn.c.Noop()
		var nsCmd *imapclient.NamespaceCommand
		if cn.c.Caps().Has(imap.CapNamespace) {
			nsCmd = cn.c.Namespace()
		}
		if noop.Wait() == nil {
			s.Pool.rtt.CompareAndSwap(0, max(int64(time.Since(begin)), 1))
		}
		if nsCmd != nil {
			data, err := nsCmd.Wait()
			if err != nil {
				return err
			}
			if len(data.Personal) > 0 {
				ns.prefix, ns.delim = data.Personal[0].Prefix, data.Personal[0].Delim
			}
			if ns.delim != 0 {
				return nil
			}
		}
		// No NAMESPACE: LIST "" "" gives the delimiter.
		l, err := cn.c.List("", "", nil).Collect()
		if err != nil {
			return err
		}
		if len(l) > 0 && l[0].Delim != 0 {
			ns.delim = l[0].Delim
		}
		return nil
	})
	if err != nil {
		return nil, Transport(fmt.Errorf("namespace: %w", err))
	}
	if ns.delim == 0 {
		ns.delim = '/'
	}
	s.mu.Lock()
	s.ns = ns
	s.mu.Unlock()
	return ns, nil
}

// ErrBadFolderName is wrapped when a folder name cannot be said on this
// server.
var ErrBadFolderName = errors.New("folder name cannot be stored on this server")

// ServerName translates a "/"-separated folder name to this server's.
func (ns *namespace) ServerName(folder string) (string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX", nil
	}
	parts := strings.Split(folder, "/")
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: %q has an empty part", ErrBadFolderName, folder)
		}
		if ns.delim != '/' && strings.ContainsRune(p, ns.delim) {
			return "", fmt.Errorf("%w: %q contains %q, this server's hierarchy delimiter", ErrBadFolderName, folder, ns.delim)
		}
		if strings.ContainsAny(p, "\r\n\x00*%") {
			return "", fmt.Errorf("%w: %q has a character IMAP cannot carry in a name", ErrBadFolderName, folder)
		}
	}
	return ns.prefix + strings.Join(parts, string(ns.delim)), nil
}

// FolderName translates this server's folder name to the "/"-separated
// form; ok is false when it cannot be (a "/" inside a part).
func (ns *namespace) FolderName(server string) (string, bool) {
	if strings.EqualFold(server, "INBOX") {
		return "INBOX", true
	}
	name := strings.TrimPrefix(server, ns.prefix)
	if ns.delim == '/' {
		return name, true
	}
	if strings.Contains(name, "/") {
		return "", false
	}
	return strings.ReplaceAll(name, string(ns.delim), "/"), true
}

// Mailbox returns the server's name for folder.
func (s *Store) Mailbox(ctx context.Context, folder string) (string, error) {
	if err := s.unselectable(folder); err != nil {
		return "", err
	}
	if gm := s.gmail(); gm != nil && folder == gm.archive {
		folder = gm.allMail
	}
	ns, err := s.Namespace(ctx)
	if err != nil {
		return "", err
	}
	return ns.ServerName(folder)
}

// Namespace returns the server's naming, connecting if needed.
func (s *Store) Namespace(ctx context.Context) (*namespace, error) {
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return nil, err
	}
	ns, err := s.namespace(ctx, cn)
	s.Pool.Put(cn, err != nil)
	return ns, err
}

// Folders implements source.Source. \Noselect and \NonExistent folders are
// left out; special-use roles (RFC 6154) are reported.
func (s *Store) Folders(ctx context.Context) ([]source.Folder, error) {
	cn, err := s.Pool.Get(ctx, "")
	if err != nil {
		return nil, err
	}
	ns, err := s.namespace(ctx, cn)
	if err != nil {
		s.Pool.Put(cn, true)
		return nil, err
	}
	var list []*imap.ListData
	var caps imap.CapSet
	subs := false // whether LIST reports subscriptions
	err = cn.Do(func() error {
		caps = cn.c.Caps()
		opts := &imap.ListOptions{}
		if cn.c.Caps().Has(imap.CapSpecialUse) {
			opts.ReturnSpecialUse = true
		}
		if cn.c.Caps().Has(imap.CapListExtended) {
			opts.ReturnSubscribed = true
			subs = true
		}
		var err error
		list, err = cn.c.List("", "*", opts).Collect()
		return err
	})
	s.Pool.Put(cn, err != nil)
	if badUTF7(err) {
		return s.rawFolders(ctx, ns)
	}
	if err != nil {
		return nil, Transport(fmt.Errorf("list folders: %w", err))
	}
	s.subsListed.Store(subs)
	s.mu.Lock()
	s.raw = nil
	s.mu.Unlock()
	var out []source.Folder
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name, ok := ns.FolderName(l.Mailbox)
		if !ok {
			s.Cfg.Log.Warn("folder skipped: its name holds '/', which mailferry uses as the hierarchy separator", "folder", l.Mailbox)
			continue
		}
		out = append(out, listedFolder(name, l.Attrs, subs))
	}
	return s.gmailFolders(out, caps), nil
}

// listedFolder is the folder name of a LIST answer with attrs: its
// special-use role (RFC 6154), and whether it is unsubscribed when the
// answer says (subs).
func listedFolder(name string, attrs []imap.MailboxAttr, subs bool) source.Folder {
	f := source.Folder{Name: name, Unsubscribed: subs && !hasAttr(attrs, imap.MailboxAttrSubscribed)}
	for _, a := range attrs {
		switch a {
		case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
			imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, mailboxAttrImportant:
			f.SpecialUse = string(a)
		}
	}
	return f
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// maxHeaderField bounds the header field a listing reads per message.

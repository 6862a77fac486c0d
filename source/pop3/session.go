package pop3

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	gopop3 "github.com/knadh/go-pop3"

	"github.com/mailferry/mailferry/internal/netx"
)

type session struct {
	c   *gopop3.Conn
	dc  *netx.DeadlineConn
	br  *bufio.Reader // ours, for RETR and TOP
	raw net.Conn      // what both readers read from (TLS or plain)
	// pipelining: the server takes several commands at once (RFC 2449).
	pipelining bool
}

// safe runs a go-pop3 call, turning its panics on malformed replies (index
// out of range on a short LIST or UIDL line) into errors.
func safe(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed reply from the server (%v)", r)
		}
	}()
	return fn()
}

// session returns the current session, dialling and logging in if needed.
// Message numbers are per session, so a new one re-reads UIDL.
func (s *Store) session(ctx context.Context) (*session, error) {
	if s.sess != nil {
		return s.sess, nil
	}
	d := &dialer{cfg: &s.cfg, ctx: ctx, live: &s.live}
	host, portStr, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	var c *gopop3.Conn
	err = safe(func() error {
		var err error
		c, err = gopop3.New(gopop3.Opt{Host: host, Port: port, Dialer: d}).NewConn()
		return err
	})
	if err != nil {
		if d.sess != nil {
			d.sess.raw.Close()
		}
		return nil, err
	}
	sess := d.sess
	sess.c = c
	if err := s.login(sess, d); err != nil {
		sess.raw.Close()
		return nil, err
	}
	s.sess = sess
	if err := s.index(ctx); err != nil {
		s.drop()
		return nil, err
	}
	return sess, nil
}

func (s *Store) login(sess *session, d *dialer) error {
	var err error
	mech := strings.ToLower(s.cfg.Auth)
	sess.dc.Begin()
	defer sess.dc.End()
	if mech == "" && s.cfg.Token != "" {
		switch {
		case d.sasl["OAUTHBEARER"]:
			mech = "oauthbearer"
		case d.sasl["XOAUTH2"]:
			mech = "xoauth2"
		default:
			return fmt.Errorf("%s: %w: an OAuth2 token was given, but the server lists neither OAUTHBEARER nor XOAUTH2", s.cfg.Addr, ErrAuth)
		}
	}
	switch {
	case mech == "xoauth2" || mech == "oauthbearer":
		var ir []byte
		if mech == "xoauth2" {
			ir = netx.XOAUTH2Response(s.cfg.User, s.cfg.Token)
		} else {
			host, port, _ := net.SplitHostPort(s.cfg.Addr)
			ir = []byte("n,a=" + s.cfg.User + ",\x01host=" + host + "\x01port=" + port + "\x01auth=Bearer " + s.cfg.Token + "\x01\x01")
		}
		err = safe(func() error {
			_, err := sess.c.Cmd("AUTH "+strings.ToUpper(mech), false, base64.StdEncoding.EncodeToString(ir))
			return err
		})
	case mech == "plain" || (mech == "" && d.sasl["PLAIN"]):
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + s.cfg.User + "\x00" + s.cfg.Password))
		err = safe(func() error { _, err := sess.c.Cmd("AUTH PLAIN", false, ir); return err })
	case mech == "apop" || (mech == "" && d.apop != ""):
		if d.apop == "" {
			return fmt.Errorf("%s: the server offers no APOP", s.cfg.Addr)
		}
		sum := md5.Sum([]byte(d.apop + s.cfg.Password))
		err = safe(func() error { _, err := sess.c.Cmd("APOP", false, s.cfg.User, hex.EncodeToString(sum[:])); return err })
	case mech == "user" || mech == "":
		err = safe(func() error { return sess.c.Auth(s.cfg.User, s.cfg.Password) })
	default:
		return fmt.Errorf("unknown auth mechanism %q (want plain, apop, user, xoauth2 or oauthbearer)", s.cfg.Auth)
	}
	if err != nil {
		return fmt.Errorf("log in to %s as %q: %w: %v", s.cfg.Addr, s.cfg.User, ErrAuth, err)
	}
	return nil
}

// index maps UIDLs to message numbers for this session.
func (s *Store) index(ctx context.Context) error {
	sess := s.sess
	sess.dc.Begin()
	defer sess.dc.End()
	var ids []gopop3.MessageID
	err := safe(func() error {
		var err error
		ids, err = sess.c.Uidl(0)
		return err
	})
	s.byID = map[string]int{}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "-ERR") && !isServerErr(err) {
			return fmt.Errorf("UIDL: %w", err)
		}
		// No UIDL: messages are keyed by content, which means reading each
		// one on every run. Said once, not hidden.
		s.noUIDL = true
		s.warn.Do(func() {
			s.cfg.Log.Warn("the server has no UIDL: messages are keyed by content hash, so every run downloads every message", "server", s.cfg.Addr)
		})
		return s.listSizes()
	}
	if err := s.listSizes(); err != nil {
		return err
	}
	// A UIDL the server gives to more than one message (RFC 1939 says it
	// must not, and some servers do) cannot tell them apart: those are
	// keyed by UIDL and content, so each is copied and none is lost.
	count := map[string]int{}
	for _, m := range ids {
		count[m.UID]++
	}
	twins := map[string]int{}
	for _, m := range ids {
		if count[m.UID] == 1 {
			s.byID[m.UID] = m.ID
			continue
		}
		h := sha256.New()
		if err := s.read(ctx, "RETR", m.ID, h); err != nil {
			return fmt.Errorf("message %d (UIDL %q given to %d messages): %w", m.ID, m.UID, count[m.UID], err)
		}
		id := m.UID + "#sha256:" + hex.EncodeToString(h.Sum(nil))
		if twins[id]++; twins[id] > 1 {
			id += "#" + strconv.Itoa(twins[id]) // identical twins stay two messages
		}
		s.byID[id] = m.ID
	}
	for uid, c := range count {
		if c > 1 {
			s.cfg.Log.Warn("the server gives one UIDL to several messages; they are told apart by content", "uidl", uid, "messages", c)
		}
	}
	return nil
}

// listSizes reads LIST, whose sizes let trailerReader undo the line break a
// server adds to a message that lacks one. A server without a usable LIST
// loses only that.
func (s *Store) listSizes() error {
	s.sizes = map[int]int64{}
	var ls []gopop3.MessageID
	if err := safe(func() error { var err error; ls, err = s.sess.c.List(0); return err }); err != nil {
		if isServerErr(err) {
			return nil
		}
		return fmt.Errorf("LIST: %w", err)
	}
	for _, m := range ls {
		s.sizes[m.ID] = int64(m.Size)
	}
	return nil
}

func (s *Store) listSize(n int) int64 {
	if sz, ok := s.sizes[n]; ok {
		return sz
	}
	return -1
}

// isServerErr: go-pop3 returns "-ERR" replies as plain errors whose text
// is the server's, without the status.
func isServerErr(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)
}

// drop forgets the session after an error: the connection is closed
// without QUIT, so nothing marked for deletion is deleted.
func (s *Store) drop() {
	if s.sess != nil {
		s.sess.raw.Close()
		s.sess = nil
	}
}

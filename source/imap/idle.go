package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/source"
)

// idleRenew is how often an IDLE is ended and begun again: RFC 2177 asks
// clients to do so at least every 29 minutes, and NAT boxes forget quiet
// connections sooner; a DONE that goes unanswered also shows a dead
// connection (a laptop resumed, a network changed).
const idleRenew = 9 * time.Minute

// Watch implements source.Watcher on a connection of its own taken from
// go-imap, which would need its unilateral handler set before the login.
// A server with NOTIFY (RFC 5465) reports new mail, expunges and flag
// changes in every folder, and folders made, renamed or deleted; one
// without reports them for INBOX, and the other folders wait for the
// watch's next pass. Either way INBOX is selected and the connection
// idles (IDLE, RFC 2177), renewed every idleRenew.
func (s *Store) Watch(ctx context.Context, changed func()) error {
	st, err := s.Pool.Detached(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer st.Close()
	if !st.Caps.Has(imap.CapIdle) {
		return fmt.Errorf("%w: the server does not offer IDLE", source.ErrCannotWatch)
	}
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()

	lines := make(chan string)
	failed := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		br := bufio.NewReader(st)
		for {
			line, err := readListLine(br)
			if err != nil {
				failed <- err
				return
			}
			select {
			case lines <- line:
			case <-done:
				return
			}
		}
	}()
	// await reads until the line tagged tag (or, with tag "+", the
	// continuation), within the connection's timeout; untagged news on
	// the way counts if report (not what SELECT says of INBOX as it is).
	await := func(tag string, report bool) error {
		st.DC.Begin()
		defer st.DC.End()
		for {
			select {
			case line := <-lines:
				if tag == "+" && strings.HasPrefix(line, "+") {
					return nil
				}
				if rest, ok := strings.CutPrefix(line, tag+" "); ok {
					if !strings.HasPrefix(strings.ToUpper(rest), "OK") {
						return fmt.Errorf("the server answered %q", rest)
					}
					return nil
				}
				if report {
					news(line, changed)
				}
			case err := <-failed:
				return Transport(err)
			case <-ctx.Done():
				return nil
			}
		}
	}
	send := func(cmd string) error {
		_, err := io.WriteString(st, cmd+"\r\n")
		return Transport(err)
	}
	// NOTIFY (RFC 5465): the other folders' news on this connection too.
	// INBOX stays selected: a server sees mail dropped into the selected
	// folder's files at once (Dovecot watches them), where it learns of
	// other folders' through its index, which a delivery that bypasses
	// it leaves behind. A server that refuses NOTIFY leaves IDLE on INBOX.
	if st.Caps.Has(capNotify) {
		if err := send("n0 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge FlagChange MailboxName))"); err != nil {
			return err
		}
		if err := await("n0", false); err != nil && !isAnswer(err) {
			return fmt.Errorf("watch: NOTIFY: %w", err)
		}
	}
	if err := send("w0 SELECT INBOX"); err != nil {
		return err
	}
	if err := await("w0", false); err != nil {
		return fmt.Errorf("watch INBOX: %w", err)
	}
	for n := 1; ctx.Err() == nil; n++ {
		tag := fmt.Sprintf("w%d", n)
		if err := send(tag + " IDLE"); err != nil {
			return err
		}
		if err := await("+", true); err != nil {
			return fmt.Errorf("watch: IDLE: %w", err)
		}
		if n == 1 {
			// Idling: from here every change is told. One made after the
			// pass listed the folder and before now was not: a pass sees it.
			changed()
		}
		renew := time.NewTimer(idleRenew)
	idling:
		for {
			select {
			case line := <-lines:
				if strings.HasPrefix(line, tag+" ") {
					break idling // the server ended the IDLE: begin again
				}
				if strings.HasPrefix(strings.ToUpper(line), "* BYE") {
					renew.Stop()
					return Transport(fmt.Errorf("watch: the server said %q", line))
				}
				news(line, changed)
			case err := <-failed:
				renew.Stop()
				if ctx.Err() != nil {
					return nil
				}
				return Transport(fmt.Errorf("watch: %w", err))
			case <-renew.C:
				if err := send("DONE"); err != nil {
					return err
				}
				if err := await(tag, true); err != nil {
					return fmt.Errorf("watch: end IDLE: %w", err)
				}
				break idling
			case <-ctx.Done():
				renew.Stop()
				send("DONE")
				return nil
			}
		}
		renew.Stop()
	}
	return nil
}

// isAnswer reports whether await failed on the server's refusal, not on
// the connection.
func isAnswer(err error) bool {
	var te *source.TransientError
	return !errors.As(err, &te)
}

// capNotify is RFC 5465's capability; go-imap does not name it.
const capNotify = imap.Cap("NOTIFY")

// news calls changed for an untagged line that says a folder changed:
// the selected one's EXISTS, EXPUNGE, FETCH, or NOTIFY's STATUS and LIST
// of another.
func news(line string, changed func()) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "*" {
		return
	}
	switch strings.ToUpper(f[1]) {
	case "STATUS", "LIST":
		changed()
		return
	}
	if len(f) >= 3 {
		switch strings.ToUpper(f[2]) {
		case "EXISTS", "EXPUNGE", "FETCH", "RECENT", "VANISHED":
			changed()
		}
	}
}

var _ source.Watcher = (*Store)(nil)

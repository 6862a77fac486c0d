// Package imap reads mail from an IMAP server (github.com/emersion/go-imap/v2
// v2.0.0-beta.8); sink/imap builds the writing side on it.
//
// Workarounds for verified library bugs (docs/library-audit.md, section 0)
// are marked "audit #N" where they are made.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/source"
)

// TLS modes: those of package endpoint, named here for callers of Config.
const (
	TLSImplicit = endpoint.TLSImplicit
	TLSStart    = endpoint.TLSStart
	TLSNone     = endpoint.TLSNone
)

// Config says how to reach and log in to a server.
type Config struct {
	Addr       string // host:port
	TLS        string // TLSImplicit, TLSStart or TLSNone
	ServerName string // for certificate checks; default: the host of Addr
	CAFile     string // PEM file of extra trusted CAs
	// InsecureSkipVerify accepts any certificate. Never the default.
	InsecureSkipVerify bool
	User               string
	Password           string
	// Token is an OAuth2 access token; with it, login uses OAUTHBEARER or
	// XOAUTH2 (whichever the server offers) instead of a password.
	Token string
	// TokenSource, when set, gives the access token for each new
	// connection instead of Token: a refreshing source keeps long runs,
	// and their reconnects, logged in past a token's lifetime.
	TokenSource func() (string, error)
	// Auth forces a mechanism: "plain", "login", "xoauth2", "oauthbearer".
	// Default: with a Token, OAUTHBEARER or XOAUTH2 as offered; else
	// AUTHENTICATE PLAIN when offered, else LOGIN.
	Auth string
	// Conns is the number of connections (default 4).
	Conns int
	// Timeout is how long a command may wait for the server to send
	// anything (default 2 minutes). It restarts with every byte, so a
	// large message on a slow link is fine; a dead peer is not waited on
	// forever.
	Timeout time.Duration
	// KeepAllMail shows a Gmail account as its server lists it (All Mail,
	// Important and Starred included) rather than as its label folders
	// plus Archive (gmail.go). A store opened to be written to sets it.
	KeepAllMail bool
	// GmailKeywords shows a Gmail account as one copy of each message, in
	// INBOX, Sent, Drafts, Spam, Trash or Archive by its system labels,
	// its other labels as keywords (gmail.go).
	GmailKeywords bool
	// Compress asks for COMPRESS=DEFLATE where the server offers it
	// (?compress=on; compress.go).
	Compress bool
	Log      *slog.Logger
}

// Errors a caller may want to tell apart.
var (
	ErrAuth     = errors.New("login rejected")
	ErrNoTLS    = errors.New("server does not offer STARTTLS")
	ErrTLSSetup = netx.ErrTLSSetup
)

// Conn is one logged-in connection, lent by a Pool to one user at a time.
type Conn struct {
	c        *imapclient.Client
	dc       *netx.DeadlineConn
	h        *handoff
	mailbox  string // selected mailbox ("" none)
	readOnly bool
	sel      *imap.SelectData
	// fresh: made by compress over a greeting of its own, nothing sent
	// since, so nothing is owed to go-imap; rtt was measured before.
	fresh bool
	rtt   time.Duration
	// loginCaps: the login's answer carried the capabilities, so go-imap
	// asks no CAPABILITY of its own after it (Pool.take).
	loginCaps bool
}

// close drops the connection without waiting on the server. The socket is
// closed first: go-imap's Close waits for its reader goroutine, which may be
// blocked handing a literal to a consumer that has gone.
func (c *Conn) close() {
	c.dc.Conn.Close()
	go c.c.Close()
}

// Pool hands out up to n connections, one user at a time each.
type Pool struct {
	cfg  *Config
	sem  chan struct{}
	mu   sync.Mutex
	idle []*Conn
	warn sync.Once
	// live holds every socket the pool has open, lent or idle, so that a
	// cancelled run closes them all at once instead of waiting for a
	// server that may never answer.
	live netx.Live
	// rtt is a NOOP's round trip, ns, once timed (Store.RoundTrip).
	rtt atomic.Int64
}

func (p *Pool) roundTrip() time.Duration { return time.Duration(p.rtt.Load()) }

func newPool(cfg *Config) *Pool {
	return &Pool{cfg: cfg, sem: make(chan struct{}, cfg.Conns)}
}

// Get returns a connection, preferring one with mailbox already selected.
func (p *Pool) Get(ctx context.Context, mailbox string) (*Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	for len(p.idle) > 0 {
		i := slices.IndexFunc(p.idle, func(c *Conn) bool { return c.mailbox == mailbox })
		if i < 0 {
			i = len(p.idle) - 1
		}
		c := p.idle[i]
		p.idle = slices.Delete(p.idle, i, i+1)
		select {
		case <-c.c.Closed():
			continue // the server hung up while it was idle
		default:
		}
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// Put returns c to the pool, or closes it when it can no longer be
// trusted (any error mid-command: audit #6, a poisoned APPEND).
func (p *Pool) Put(c *Conn, broken bool) {
	if broken {
		c.close()
	} else {
		p.mu.Lock()
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.sem
}

func (p *Pool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	// LOGOUT on every idle connection at once: one round trip for all of
	// them, not one each (a tenth of a second through 20 ms each way).
	// The answers are a courtesy, awaited no longer than logoutWait: a
	// server that keeps silent does not keep the run from ending.
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(func() { c.Do(func() error { return c.c.Logout().Wait() }) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(logoutWait)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	for _, c := range idle {
		c.close()
	}
}

// logoutWait bounds the wait for the answers to LOGOUT.
const logoutWait = 2 * time.Second

func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	tc, err := netx.TLSConfig(p.cfg.Addr, p.cfg.ServerName, p.cfg.CAFile, p.cfg.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", p.cfg.Addr, err)
	}
	raw, err = p.live.Track(raw)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", p.cfg.Addr, err)
	}
	// What a server may send before the login is done: greeting,
	// capabilities, STARTTLS, the TLS handshake and a few short answers.
	bc := netx.NewBudgetConn(raw, preLoginBudget)
	dc := netx.NewDeadlineConn(bc, p.cfg.Timeout)
	// go-imap words the budget's error in its own terms (%v): say it.
	spent := func(err error) error {
		if bc.Spent() {
			return fmt.Errorf("%s: %w: more than %d KB before the login was done", p.cfg.Addr, netx.ErrTooMuch, preLoginBudget>>10)
		}
		return err
	}
	dc.Begin()
	defer dc.End()
	opts := &imapclient.Options{TLSConfig: tc}
	var c *imapclient.Client
	var h *handoff         // nil with STARTTLS: go-imap holds the TLS layer
	var rec *netx.Recorder // the server's first bytes, to name a wrong port
	switch p.cfg.TLS {
	case TLSImplicit:
		t := tls.Client(dc, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			raw.Close()
			if m := netx.HandshakeMismatch(err, p.cfg.Addr, netx.IMAP); m != nil {
				return nil, m
			}
			return nil, fmt.Errorf("TLS with %s: %w", p.cfg.Addr, err)
		}
		rec = netx.NewRecorder(t)
		h = &handoff{Conn: rec}
		c = imapclient.New(h, opts)
	case TLSStart:
		rec = netx.NewRecorder(dc)
		c, err = imapclient.NewStartTLS(rec, opts)
		if err != nil {
			raw.Close()
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil, fmt.Errorf("%s: %w (%v); use imaps://, or ?tls=none on a trusted loopback", p.cfg.Addr, ErrNoTLS, err)
			}
			if m := netx.GreetingMismatch(err, p.cfg.Addr, netx.IMAP, false, rec.First()); m != nil && !bc.Spent() {
				return nil, m
			}
			return nil, spent(fmt.Errorf("STARTTLS with %s: %w", p.cfg.Addr, err))
		}
	default:
		p.warn.Do(func() {
			p.cfg.Log.Warn("IMAP without TLS (tls=none): the password and mail cross the network in clear", "server", p.cfg.Addr)
		})
		rec = netx.NewRecorder(dc)
		h = &handoff{Conn: rec}
		c = imapclient.New(h, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		if m := netx.GreetingMismatch(err, p.cfg.Addr, netx.IMAP, p.cfg.TLS == TLSImplicit, rec.First()); m != nil && !bc.Spent() {
			return nil, m
		}
		return nil, spent(Transport(fmt.Errorf("greeting from %s: %w", p.cfg.Addr, err)))
	}
	cn := &Conn{c: c, dc: dc, h: h}
	if err := p.login(cn); err != nil {
		c.Close()
		return nil, spent(err)
	}
	bc.Lift()
	if h != nil && p.cfg.Compress && c.Caps().Has(capCompress) {
		return p.compress(cn)
	}
	return cn, nil
}

// preLoginBudget bounds what a server sends before the login is done.
const preLoginBudget = 1 << 20

func (p *Pool) login(cn *Conn) error {
	c := cn.c
	if c.State() == imap.ConnStateAuthenticated {
		return nil // PREAUTH (refused by go-imap on STARTTLS)
	}
	caps := c.Caps()
	var err error
	token := p.cfg.Token
	if p.cfg.TokenSource != nil {
		if token, err = p.cfg.TokenSource(); err != nil {
			return fmt.Errorf("%s: OAuth2 token: %w", p.cfg.Addr, err)
		}
	}
	mech := strings.ToLower(p.cfg.Auth)
	if mech == "" && token != "" {
		switch {
		case caps.Has(imap.AuthCap("OAUTHBEARER")):
			mech = "oauthbearer"
		case caps.Has(imap.AuthCap("XOAUTH2")):
			mech = "xoauth2"
		default:
			return fmt.Errorf("%s: %w: an OAuth2 token was given, but the server offers neither OAUTHBEARER nor XOAUTH2", p.cfg.Addr, ErrAuth)
		}
	}
	host, portStr, _ := net.SplitHostPort(p.cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	switch {
	case mech == "oauthbearer":
		err = c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: p.cfg.User, Token: token, Host: host, Port: port}))
	case mech == "xoauth2":
		err = c.Authenticate(netx.XOAUTH2(p.cfg.User, token))
	case mech == "plain" || (mech == "" && caps.Has(imap.AuthCap("PLAIN"))):
		err = c.Authenticate(sasl.NewPlainClient("", p.cfg.User, p.cfg.Password))
	case mech == "login" || mech == "":
		if caps.Has(imap.CapLoginDisabled) {
			return fmt.Errorf("%s: %w: the server disables LOGIN here and offers no AUTHENTICATE PLAIN", p.cfg.Addr, ErrAuth)
		}
		err = c.Login(p.cfg.User, p.cfg.Password).Wait()
	default:
		return fmt.Errorf("unknown auth mechanism %q (want plain, login, xoauth2 or oauthbearer)", p.cfg.Auth)
	}
	if err != nil {
		// The server's text, never the password (it is not in it).
		return fmt.Errorf("log in to %s as %q: %w: %v", p.cfg.Addr, p.cfg.User, ErrAuth, err)
	}
	// go-imap takes a [CAPABILITY] in the login's answer before it ends
	// the command; without one it forgets the capabilities only after,
	// and asks CAPABILITY itself. So capabilities other than the
	// greeting's, seen now, came with the answer (or from a CAPABILITY
	// already answered): nothing more will follow. The same set proves
	// nothing, and take then waits go-imap out.
	cn.loginCaps = !maps.Equal(caps, c.Caps())
	return nil
}

// Do runs fn with cn's deadline active: every command must go through it.
func (cn *Conn) Do(fn func() error) error {
	cn.dc.Begin()
	defer cn.dc.End()
	return fn()
}

// Awaiting keeps cn's timeout on while a command's answer is awaited
// outside Do, after the connection went back to the pool (a pipelined
// APPEND); call the returned func once the answer is in.
func (cn *Conn) Awaiting() (done func()) {
	cn.dc.Begin()
	return cn.dc.End
}

// Select selects (or, readOnly, examines) mailbox unless it is
// already selected that way.
func (cn *Conn) Select(mailbox string, readOnly bool) (*imap.SelectData, error) {
	// A read-write selection serves readers too (they fetch with PEEK).
	if cn.mailbox == mailbox && cn.sel != nil && (readOnly || !cn.readOnly) {
		return cn.sel, nil
	}
	var data *imap.SelectData
	err := cn.Do(func() error {
		var err error
		data, err = cn.c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
		return err
	})
	cn.selected(mailbox, readOnly, data, err)
	return data, err
}

// selected notes the outcome of a SELECT or EXAMINE of mailbox sent on cn.
func (cn *Conn) selected(mailbox string, readOnly bool, data *imap.SelectData, err error) {
	if err != nil {
		cn.mailbox, cn.sel = "", nil
		return
	}
	cn.mailbox, cn.readOnly, cn.sel = mailbox, readOnly, data
}

// Client returns the go-imap client, for commands run inside Do.
func (cn *Conn) Client() *imapclient.Client { return cn.c }

// Transport marks err as transient unless it is the server's own answer
// (an *imap.Error: NO or BAD, which a retry would only repeat) or a
// cancellation. go-imap flattens broken-connection errors into text ("in
// response: cannot read tag: ... connection reset"), so this is the one
// place that still knows what they were.
func Transport(err error) error {
	var ie *imap.Error
	var te *source.TransientError
	if err == nil || errors.As(err, &ie) || errors.As(err, &te) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrAuth) || errors.Is(err, ErrTLSSetup) || errors.Is(err, ErrBadID) ||
		errors.Is(err, source.ErrMessageNotFound) || errors.Is(err, source.ErrFolderNotFound) {
		return err
	}
	return &source.TransientError{Err: err}
}

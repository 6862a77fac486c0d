package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/netx"
)

// dialer is go-pop3's Dialer: it connects, sets up TLS (implicit or STLS),
// reads the greeting and CAPA itself, and hands go-pop3 a connection that
// replays the greeting.
type dialer struct {
	cfg  *Config
	ctx  context.Context
	live *netx.Live
	sess *session
	apop string // the greeting's APOP timestamp
	sasl map[string]bool
	warn sync.Once
}

var apopStamp = regexp.MustCompile(`<[^<>@\s]+@[^<>\s]+>`)

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	tc, err := netx.TLSConfig(d.cfg.Addr, "", d.cfg.CAFile, d.cfg.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if raw, err = d.live.Track(raw); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	dc := netx.NewDeadlineConn(raw, d.cfg.Timeout)
	dc.Begin()
	defer dc.End()
	var conn net.Conn = dc
	if d.cfg.TLS == TLSImplicit {
		t := tls.Client(dc, tc)
		if err := t.HandshakeContext(d.ctx); err != nil {
			raw.Close()
			if m := netx.HandshakeMismatch(err, addr, netx.POP3); m != nil {
				return nil, m
			}
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = t
	}
	rec := netx.NewRecorder(conn)
	br := bufio.NewReaderSize(rec, 64<<10)
	greeting, err := readLine(br)
	if err != nil {
		raw.Close()
		if m := netx.GreetingMismatch(err, addr, netx.POP3, d.cfg.TLS == TLSImplicit, rec.First()); m != nil {
			return nil, m
		}
		return nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(greeting, "+OK") {
		raw.Close()
		err := fmt.Errorf("greeting from %s is not +OK: %q", addr, strings.TrimSpace(greeting))
		if m := netx.GreetingMismatch(err, addr, netx.POP3, d.cfg.TLS == TLSImplicit, []byte(greeting)); m != nil {
			return nil, m
		}
		return nil, err
	}
	caps, err := capa(conn, br)
	if err != nil {
		raw.Close()
		return nil, err
	}
	switch d.cfg.TLS {
	case TLSStart:
		if !caps["STLS"] {
			raw.Close()
			return nil, fmt.Errorf("%s: %w; use pop3s://, or ?tls=none on a trusted loopback", addr, ErrNoTLS)
		}
		if _, err := io.WriteString(conn, "STLS\r\n"); err != nil {
			raw.Close()
			return nil, err
		}
		if line, err := readLine(br); err != nil || !strings.HasPrefix(line, "+OK") {
			raw.Close()
			return nil, fmt.Errorf("%s: STLS refused: %q %v", addr, strings.TrimSpace(line), err)
		}
		t := tls.Client(dc, tc)
		if err := t.HandshakeContext(d.ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = t
		br = bufio.NewReaderSize(conn, 64<<10)
		if caps, err = capa(conn, br); err != nil { // capabilities may change after STLS (RFC 2595)
			raw.Close()
			return nil, err
		}
	case TLSNone:
		d.warn.Do(func() {
			d.cfg.Log.Warn("POP3 without TLS (tls=none): the password and mail cross the network in clear", "server", addr)
		})
	}
	d.apop = apopStamp.FindString(greeting)
	d.sasl = map[string]bool{}
	for k := range caps {
		if m, ok := strings.CutPrefix(k, "SASL "); ok {
			for _, mech := range strings.Fields(m) {
				d.sasl[strings.ToUpper(mech)] = true
			}
		}
	}
	d.sess = &session{dc: dc, br: br, raw: conn, pipelining: caps["PIPELINING"] && !d.cfg.NoPipelining}
	return &netx.ReplayConn{Conn: conn, Pre: []byte(greeting)}, nil
}

// Bounds on what a server may send where mailferry holds it in memory:
// a status line (RFC 1939 allows 512 bytes; some servers say more) and
// the CAPA list.
const (
	maxLine = 8 << 10
	maxCapa = 64 << 10
)

// ErrTooLong is wrapped when a server sends more than those bounds.
var ErrTooLong = errors.New("the server sent more than mailferry accepts")

// readLine reads one line of at most maxLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return "", fmt.Errorf("%w: a line longer than %d bytes", ErrTooLong, maxLine)
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return string(line), err
	}
}

// capa asks for the capabilities (RFC 2449); a server without CAPA has
// none to tell.
func capa(conn net.Conn, br *bufio.Reader) (map[string]bool, error) {
	caps := map[string]bool{}
	if _, err := io.WriteString(conn, "CAPA\r\n"); err != nil {
		return nil, err
	}
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return caps, nil
	}
	var body bytes.Buffer
	if n, err := io.Copy(&body, io.LimitReader(newDotReader(br), maxCapa+1)); err != nil {
		return nil, fmt.Errorf("CAPA: %w", err)
	} else if n > maxCapa {
		return nil, fmt.Errorf("CAPA: %w: more than %d bytes", ErrTooLong, maxCapa)
	}
	for _, l := range strings.Split(body.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(l), "SASL ") {
			caps["SASL "+strings.ToUpper(l[5:])] = true
		}
		caps[strings.ToUpper(strings.Fields(l)[0])] = true
	}
	return caps, nil
}

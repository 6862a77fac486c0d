package imap

import (
	"bufio"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/netx"
)

// COMPRESS=DEFLATE (RFC 4978): after the login, both directions of a
// connection are one raw DEFLATE stream, each side flushing (a sync
// flush) after every burst. Mail is text, so a slow link carries more of
// it; a fast one only pays the CPU. Measured on the project's 2-core VM
// (bench TestWAN, 1,000 messages of text, Dovecot at level 1): 1.82x
// faster through 20 ms and 50 Mbit/s, 1.8x slower on loopback, where
// client and server share the two cores. So it is asked for only with ?compress=on, and
// only of a server that offers it (Gmail does; Dovecot with imap_zlib).
//
// go-imap has no COMPRESS command and owns its connection. So the
// logged-in connection is taken from it (Pool.take), COMPRESS is sent on
// the stream, and a new go-imap client is made over the compressed
// stream, told by a PREAUTH greeting that it is logged in, with the
// capabilities the old one had.

const capCompress = imap.Cap("COMPRESS=DEFLATE")

// compress switches cn to COMPRESS=DEFLATE and returns the connection to
// use instead; cn is closed on failure.
func (p *Pool) compress(cn *Conn) (*Conn, error) {
	stream, caps, rtt, err := p.take(cn)
	if err != nil {
		return nil, err
	}
	cn.dc.Begin()
	_, err = io.WriteString(stream, "mfz COMPRESS DEFLATE\r\n")
	var answer string
	for err == nil {
		// Byte by byte: what follows the answer is compressed, and
		// must be left for the decompressor.
		if answer, err = readRawLine(stream); err == nil && strings.HasPrefix(answer, "mfz ") {
			break
		}
	}
	cn.dc.End()
	if err != nil {
		stream.Close()
		return nil, Transport(fmt.Errorf("%s: COMPRESS: %w", p.cfg.Addr, err))
	}
	greeting := "* PREAUTH [CAPABILITY " + capList(caps) + "] logged in\r\n"
	var under net.Conn
	if strings.HasPrefix(strings.ToUpper(answer), "MFZ OK") {
		under = newDeflateConn(stream, greeting)
	} else {
		// Refused (RFC 4978 allows NO): the stream goes on as it was.
		under = &netx.ReplayConn{Conn: stream, Pre: []byte(greeting)}
	}
	h := &handoff{Conn: under}
	c := imapclient.New(h, &imapclient.Options{})
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, Transport(fmt.Errorf("%s: after COMPRESS: %w", p.cfg.Addr, err))
	}
	return &Conn{c: c, dc: cn.dc, h: h, fresh: true, rtt: rtt}, nil
}

// capList writes capabilities for a CAPABILITY response code.
func capList(caps imap.CapSet) string {
	var out []string
	for c := range caps {
		out = append(out, string(c))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// readRawLine reads one line, a byte at a time, of at most 4 KB.
func readRawLine(r io.Reader) (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() < 4<<10 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return strings.TrimRight(b.String(), "\r"), nil
		}
		b.WriteByte(one[0])
	}
	return "", errors.New("answer line too long")
}

// errWoken ends a Read that wake interrupted.
var errWoken = errors.New("woken")

// deflateConn is a connection after COMPRESS: writes are compressed and
// flushed, reads decompressed by a goroutine of its own, so a Read can be
// interrupted (wake, for Pool.take) without a failed read ending the
// decompressor's state, which would end the stream.
type deflateConn struct {
	net.Conn
	wmu    sync.Mutex
	zw     *flate.Writer
	chunks chan []byte
	dead   chan struct{} // closed when the reader stopped; err says why
	err    error
	closed chan struct{}
	once   sync.Once
	wakeCh chan struct{}

	pending []byte // read but not yet returned (first: the greeting)
}

func newDeflateConn(c net.Conn, greeting string) *deflateConn {
	// BestSpeed: most of the gain on mail text, little of the CPU.
	zw, _ := flate.NewWriter(c, flate.BestSpeed)
	d := &deflateConn{Conn: c, zw: zw, chunks: make(chan []byte, 8), dead: make(chan struct{}),
		closed: make(chan struct{}), wakeCh: make(chan struct{}, 1), pending: []byte(greeting)}
	go d.readLoop()
	return d
}

func (d *deflateConn) readLoop() {
	zr := flate.NewReader(bufio.NewReaderSize(d.Conn, 32<<10))
	for {
		buf := make([]byte, 32<<10)
		n, err := zr.Read(buf)
		if n > 0 {
			select {
			case d.chunks <- buf[:n]:
			case <-d.closed:
				return
			}
		}
		if err != nil {
			d.err = err
			close(d.dead)
			return
		}
	}
}

func (d *deflateConn) Read(p []byte) (int, error) {
	if len(d.pending) == 0 {
		select {
		case c := <-d.chunks:
			d.pending = c
		default:
			select {
			case c := <-d.chunks:
				d.pending = c
			case <-d.dead:
				select {
				case c := <-d.chunks:
					d.pending = c
				default:
					return 0, d.err
				}
			case <-d.wakeCh:
				return 0, errWoken
			}
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

func (d *deflateConn) Write(p []byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if _, err := d.zw.Write(p); err != nil {
		return 0, err
	}
	if err := d.zw.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wake ends a Read under way (Pool.take) and leaves the stream whole.
func (d *deflateConn) wake() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

func (d *deflateConn) settle() {
	select {
	case <-d.wakeCh:
	default:
	}
}

func (d *deflateConn) Close() error {
	d.once.Do(func() { close(d.closed) })
	return d.Conn.Close()
}

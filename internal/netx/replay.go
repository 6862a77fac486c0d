package netx

import "net"

// ReplayConn yields Pre before what the connection reads: bytes read off
// the stream already, to be read again by a client that expects them
// (go-pop3 wants the greeting its dialer consumed; a go-imap client made
// after COMPRESS wants a greeting the server never sends).
type ReplayConn struct {
	net.Conn
	Pre []byte
}

func (c *ReplayConn) Read(p []byte) (int, error) {
	if len(c.Pre) > 0 {
		n := copy(p, c.Pre)
		c.Pre = c.Pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

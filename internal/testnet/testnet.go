// Package testnet starts the scripted servers of the tests: a listener on
// loopback whose connections each get a goroutine, closed when the test
// ends.
package testnet

import (
	"net"
	"testing"
)

// Serve listens on 127.0.0.1 and runs handle for every connection until the
// test ends. It returns the address.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln := Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// Listen listens on a free port of 127.0.0.1 until the test ends, for a
// server that accepts connections itself (go-imap's imapserver).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

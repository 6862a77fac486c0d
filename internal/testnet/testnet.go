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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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

package netx

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

// ErrTooMuch is wrapped when a peer sends more than a BudgetConn allows.
var ErrTooMuch = errors.New("the server sent more than mailferry accepts here")

// BudgetConn fails reads once more than a budget of bytes has arrived,
// until Lift: before login a server has a greeting, capabilities and a few
// short answers to send, so one that sends a greeting without end (before
// TLS, so anyone on the path can) costs a bounded amount of memory, not
// all of it.
type BudgetConn struct {
	net.Conn
	left   atomic.Int64
	lifted atomic.Bool
}

// NewBudgetConn wraps c with a budget of n bytes.
func NewBudgetConn(c net.Conn, n int64) *BudgetConn {
	b := &BudgetConn{Conn: c}
	b.left.Store(n)
	return b
}

// Lift ends the budget (the session is established; the adapter bounds
// what it reads from then on).
func (b *BudgetConn) Lift() { b.lifted.Store(true) }

// Spent reports whether the budget ran out: the error the client library
// returned was caused by it, whatever words it chose.
func (b *BudgetConn) Spent() bool { return !b.lifted.Load() && b.left.Load() <= 0 }

func (b *BudgetConn) Read(p []byte) (int, error) {
	if b.lifted.Load() {
		return b.Conn.Read(p)
	}
	left := b.left.Load()
	if left <= 0 {
		return 0, fmt.Errorf("%w (before login)", ErrTooMuch)
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.Conn.Read(p)
	b.left.Add(-int64(n))
	return n, err
}

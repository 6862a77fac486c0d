package netx

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// Wake ends a Read at once, whether it comes before the Read, during it,
// or while a command's window is open (Begin), where a Read arms that
// window's deadline: a wake it undid would leave the reader waiting out
// the whole timeout. Unwake gives the next owner a connection that waits
// for data again.
func TestDeadlineConnWake(t *testing.T) {
	const timeout = time.Minute
	for _, tt := range []struct {
		name string
		do   func(d *DeadlineConn) // before the Read
		late bool                  // Wake while the Read waits
	}{
		{"woken, then read", func(d *DeadlineConn) { d.Wake() }, false},
		{"woken while reading", nil, true},
		{"a command's window open, woken, then read", func(d *DeadlineConn) { d.Begin(); d.Wake() }, false},
		{"woken, a command's window opened, then read", func(d *DeadlineConn) { d.Wake(); d.Begin() }, false},
		{"woken while a command's read waits", func(d *DeadlineConn) { d.Begin() }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			d := NewDeadlineConn(a, timeout)
			if tt.do != nil {
				tt.do(d)
			}
			if tt.late {
				time.AfterFunc(50*time.Millisecond, d.Wake)
			}
			begin := time.Now()
			_, err := d.Read(make([]byte, 1))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read: %v, want a timeout", err)
			}
			if took := time.Since(begin); took > 5*time.Second {
				t.Fatalf("Read took %v", took)
			}
			d.Unwake()
			go b.Write([]byte("x"))
			if n, err := d.Read(make([]byte, 1)); n != 1 || err != nil {
				t.Fatalf("Read after Unwake: %d, %v", n, err)
			}
		})
	}
}

package imap

import (
	"context"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
)

// A Dovecot on this machine keeps the kind's count of messages in flight;
// the same Dovecot 20 ms away (each way) gets at least farInFlight, and a
// count above that is left alone.
func TestInFlightByRoundTrip(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := newUser(t, srv)
	far := faultproxy.Start(t, dovecottest.Addr(srv.IMAPPort), &faultproxy.Proxy{Delay: 20 * time.Millisecond})
	for _, tc := range []struct {
		name    string
		addr    string
		workers int
		want    int
		minRTT  time.Duration
	}{
		{"loopback", dovecottest.Addr(srv.IMAPPort), 64, 64, 0},
		{"20 ms away", far.Addr, 64, farInFlight, 40 * time.Millisecond},
		{"20 ms away, more asked", far.Addr, 300, 300, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, plainConfig(tc.addr, user))
			if _, err := s.Folders(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Logf("NOOP's round trip %v", s.RoundTrip())
			if s.RoundTrip() < tc.minRTT || s.RoundTrip() == 0 {
				t.Errorf("round trip %v, want at least %v and measured", s.RoundTrip(), tc.minRTT)
			}
			if got := s.InFlight(tc.workers); got != tc.want {
				t.Errorf("InFlight(%d) = %d (round trip %v), want %d", tc.workers, got, s.RoundTrip(), tc.want)
			}
		})
	}
}

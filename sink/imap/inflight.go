package imap

import (
	"time"

	"github.com/mailferry/mailferry/sink"
)

var _ sink.InFlightTuner = (*Sink)(nil)

// farRTT: a server whose NOOP takes this long to answer is across a
// network, not on this machine (loopback Dovecot: under a millisecond).
const farRTT = 10 * time.Millisecond

// farInFlight is how many messages a far server has in flight at least.
// A message waits for its MULTIAPPEND's answer, a round trip and the
// server's commit: through 20 ms each way, the benchmark's 500 messages
// took 2.22 s with 64 in flight (the default) and 1.98 s with 128, the
// count ?compress=on asks for on a slow link (median of 5). Where 50
// Mbit/s is the limit, 128 changed nothing (9.67 s against 9.35 s, the
// runs' spread 9.2-10.3 s); on loopback it cost IMAP→IMAP 12%, so only
// here. The spools stay within their 32 MB.
const farInFlight = 128

// InFlight implements sink.InFlightTuner: more in flight to a far server
// (known once the folders are listed).
func (s *Sink) InFlight(workers int) int {
	if s.RoundTrip() >= farRTT {
		return max(workers, farInFlight)
	}
	return workers
}

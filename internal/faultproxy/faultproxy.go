// Package faultproxy is a TCP proxy for tests that breaks connections on
// purpose: it drops a connection after a random number of bytes, or stalls
// it (forwards nothing more, closes nothing) so the client's timeout must
// notice. It can also delay every byte, to show what latency costs (the
// benchmark's 20 ms run). It listens on loopback and forwards to one
// address only.
package faultproxy

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Proxy forwards connections to a target, breaking the first Faults of
// them after between MinBytes and MaxBytes bytes (either direction).
type Proxy struct {
	Addr     string
	Faults   int64 // connections to break; later ones pass untouched
	MinBytes int64
	MaxBytes int64
	// StallEvery makes every Nth broken connection stall instead of drop.
	StallEvery int64
	// Delay holds every byte this long in each direction, as a link with
	// that one-way latency and no bandwidth limit would (a round trip
	// costs 2×Delay).
	Delay time.Duration
	// Rate caps the bytes per second in each direction, shared by every
	// connection through the proxy, as one link's bandwidth is (0: none).
	Rate int
	// Rewrite, if set, changes each chunk read from the server (fromServer)
	// or the client before it is forwarded: a server that says something
	// a real one would not (a test rewrites short, unique strings, which
	// a chunk boundary does not split at the sizes tests send).
	Rewrite func(fromServer bool, b []byte) []byte

	broken, stalled atomic.Int64
	carried         [2]atomic.Int64 // bytes forwarded to the server, to the client
	mu              sync.Mutex
	rng             *rand.Rand
	links           [2]*rate.Limiter // to the server, to the client
}

// Start listens on 127.0.0.1 and forwards to target until the test ends.
func Start(t testing.TB, target string, p *Proxy) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); p.serve(c, target, done) }()
		}
	}()
	return p
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Carried returns the bytes forwarded so far to the server and to the
// client: what crossed the link (the WAN benchmark says how much
// compression saved).
func (p *Proxy) Carried() (toServer, toClient int64) {
	return p.carried[0].Load(), p.carried[1].Load()
}

// link is the shared limiter of one direction.
func (p *Proxy) link(fromServer bool) *rate.Limiter {
	i := boolIndex(fromServer)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.links[i] == nil {
		p.links[i] = rate.NewLimiter(rate.Limit(p.Rate), 16<<10)
	}
	return p.links[i]
}

// Broken and Stalled count the faults made so far.
func (p *Proxy) Broken() int64  { return p.broken.Load() }
func (p *Proxy) Stalled() int64 { return p.stalled.Load() }

func (p *Proxy) serve(c net.Conn, target string, done chan struct{}) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	var budget int64 = -1 // -1: no fault
	stall := false
	if n := p.broken.Add(1); n <= p.Faults {
		p.mu.Lock()
		budget = p.MinBytes + p.rng.Int64N(p.MaxBytes-p.MinBytes+1)
		p.mu.Unlock()
		stall = p.StallEvery > 0 && n%p.StallEvery == 0
	} else {
		p.broken.Add(-1)
	}
	var left atomic.Int64
	left.Store(budget)
	cut := make(chan struct{})
	var once sync.Once
	pipe := func(dst, src net.Conn, fromServer bool) {
		write, flush := dst.Write, func() {}
		if p.Delay > 0 || p.Rate > 0 {
			var link *rate.Limiter
			if p.Rate > 0 {
				link = p.link(fromServer)
			}
			write, flush = delayed(dst, p.Delay, cut, link)
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && p.Rewrite != nil {
				b := p.Rewrite(fromServer, buf[:n])
				if len(b) > len(buf) {
					buf = make([]byte, len(b))
				}
				n = copy(buf, b)
			}
			if n > 0 && budget >= 0 {
				if rem := left.Add(-int64(n)); rem < 0 {
					n += int(rem) // forward only up to the budget
					if n > 0 {
						write(buf[:n])
					}
					once.Do(func() { close(cut) })
					return
				}
			}
			if n > 0 {
				if _, werr := write(buf[:n]); werr != nil {
					return
				}
				p.carried[boolIndex(fromServer)].Add(int64(n))
			}
			if err != nil {
				flush() // what is on its way still arrives
				once.Do(func() { close(cut) })
				return
			}
		}
	}
	go pipe(up, c, false)
	go pipe(c, up, true)
	<-cut
	if stall && budget >= 0 {
		p.stalled.Add(1)
		select { // hold both ends open, silent, until the test ends
		case <-done:
		case <-time.After(10 * time.Minute):
		}
	}
}

// delayed returns a writer that hands each write to dst d after it was
// made, in order, without blocking the caller (the bytes are copied), and
// a flush that waits until everything written has been handed on.
//
// With link, bytes are handed on no faster than it allows.
func delayed(dst net.Conn, d time.Duration, cut <-chan struct{}, link *rate.Limiter) (write func([]byte) (int, error), flush func()) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	ch := make(chan chunk, 4096)
	drained := make(chan struct{})
	var failed atomic.Bool
	go func() {
		defer close(drained)
		for c := range ch {
			select {
			case <-time.After(time.Until(c.at.Add(d))):
			case <-cut:
				return
			}
			for b := c.b; len(b) > 0; {
				n := len(b)
				if link != nil {
					n = min(n, link.Burst())
					if err := link.WaitN(context.Background(), n); err != nil {
						failed.Store(true)
						return
					}
				}
				if _, err := dst.Write(b[:n]); err != nil {
					failed.Store(true)
					return
				}
				b = b[n:]
			}
		}
	}()
	flush = func() { close(ch); <-drained }
	return func(b []byte) (int, error) {
		if failed.Load() {
			return 0, net.ErrClosed
		}
		select {
		case ch <- chunk{at: time.Now(), b: append([]byte(nil), b...)}:
			return len(b), nil
		case <-cut:
			return 0, net.ErrClosed
		}
	}, flush
}

package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// garbageFloor is the soft memory limit while the live heap is small.
const garbageFloor = 64 << 20

// capGarbage keeps garbage from doubling peak memory. mailferry's heap is
// mostly folder listings and keys that live all run; with the default
// GOGC=100 the collector lets as much garbage pile up again, and that was
// most of the peak RSS at 50,000 messages (105 MB). A soft memory limit of
// 64 MB caps it, and is raised to one and a half times the live heap as
// that grows, so a mailbox whose keys outgrow the limit never makes the
// collector run flat out. (Halving GOGC, tried first, cut the peak too,
// but doubles the collections whatever the heap's size: in a 5,000-message
// POP3 copy's CPU profile the collector and the scavenger then took about
// a third.) Measured at 50,000 messages, IMAP to Maildir: 105 MB with the
// default, 74 MB with this, in no more time. GOGC or GOMEMLIMIT in the
// environment win.
func capGarbage() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(garbageFloor)
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		limit := uint64(garbageFloor)
		for range time.Tick(250 * time.Millisecond) {
			metrics.Read(s)
			if s[0].Value.Kind() != metrics.KindUint64 {
				return
			}
			live := s[0].Value.Uint64()
			if want := live + live/2; want > limit {
				limit = want
				debug.SetMemoryLimit(int64(limit))
			}
		}
	}()
}

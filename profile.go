package main

import (
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// profile writes profiles for the benchmark's investigations, named by
// the environment, not by settings: they are for whoever works on
// mailferry (docs/HACKING.md), not for its users.
//
//   - MAILFERRY_CPUPROFILE=FILE: the run's CPU profile.
//   - MAILFERRY_MEMPROFILE=FILE: the heap profile taken when the live
//     heap was largest, which is what sets the peak resident set; a
//     profile written at exit would show a heap already let go.
//
// A %p in FILE is replaced by the process ID, so that the benchmark's
// runs, one after another, each leave their own. The returned func ends
// the profiles; call it before exiting.
func profile() (stop func()) {
	var stops []func()
	if name := profileName("MAILFERRY_CPUPROFILE"); name != "" {
		if f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
			} else {
				f.Close()
			}
		}
	}
	if name := profileName("MAILFERRY_MEMPROFILE"); name != "" {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			heapAtPeak(name, done)
		}()
		stops = append(stops, func() { close(done); <-finished })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func profileName(env string) string {
	return strings.ReplaceAll(os.Getenv(env), "%p", strconv.Itoa(os.Getpid()))
}

// heapAtPeak writes the heap profile to name each time the live heap
// grows by a tenth past its largest size so far, until done.
func heapAtPeak(name string, done <-chan struct{}) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if live := s[0].Value.Uint64(); live > peak+peak/10 {
			peak = live
			writeHeap(name)
		}
	}
}

func writeHeap(name string) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	runtime.GC() // the profile's in-use figures are as of the last collection
	pprof.Lookup("heap").WriteTo(f, 0)
}

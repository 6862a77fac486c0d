package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// maxWatchBackoff bounds the wait after failed passes.
const maxWatchBackoff = 5 * time.Minute

// watch runs pass once and, with --watch (or watch: true), again every
// --watch-interval seconds until ctx ends: continuous backup by polling,
// each pass the complete run a cron job would make (the destination
// checked, the checkpoint kept), so nothing is lost or doubled across
// disconnects, restarts and kills. A pass that fails is reported and the
// wait doubles, up to five minutes, until one succeeds. SIGHUP starts a
// pass at once (run reads its config file again on every pass).
//
// Ended by SIGTERM or Ctrl-C while it waits, it exits 0: the last pass put
// everything at the destination. Ended during a pass, that pass's code
// stands (1: interrupted).
func watch(ctx context.Context, in *invocation, stderr io.Writer, pass func(context.Context) (int, error)) (int, error) {
	code, err := pass(ctx)
	rs := in.effective
	if rs == nil || !rs.Watch || code == exitUsage || ctx.Err() != nil {
		return code, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	interval := time.Duration(rs.WatchInterval) * time.Second
	wait := interval
	for {
		if err != nil {
			report(stderr, err)
		}
		switch code {
		case exitFailed, exitLocked:
			wait = min(2*wait, max(interval, maxWatchBackoff))
			fmt.Fprintf(stderr, "mailferry: watching: next pass in %v\n", wait)
		default:
			wait = interval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if code == exitFailed || code == exitIncomplete {
				return code, nil
			}
			return exitOK, nil
		case <-hup:
			t.Stop()
			fmt.Fprintln(stderr, "mailferry: SIGHUP: a pass now")
		case <-t.C:
		}
		in.pass++
		code, err = pass(ctx)
		if ctx.Err() != nil {
			return code, err
		}
	}
}

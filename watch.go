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
// Ended by SIGTERM or Ctrl-C, it lets a pass under way finish (for up to
// stopGrace; a watch pass is short) and exits with its code: 0 when the
// last pass put everything at the destination. A pass still going after
// the grace is cut short (1: interrupted). watching says, before the first
// pass, whether this is a watch at all: a plain copy stops at once.
func watch(ctx context.Context, in *invocation, stderr io.Writer, watching bool, pass func(context.Context) (int, error)) (int, error) {
	if watching {
		inner := pass
		pass = func(ctx context.Context) (int, error) { return graced(ctx, inner) }
	}
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

// stopGrace is how long a stop waits for a watch pass under way.
const stopGrace = 5 * time.Second

// graced runs pass on a context that ends stopGrace after ctx does.
func graced(ctx context.Context, pass func(context.Context) (int, error)) (int, error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(stopGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-done:
			}
		case <-done:
		}
	}()
	return pass(pctx)
}

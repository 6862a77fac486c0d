package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/source"
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
//
// Between passes, a source that can say when it changes (IMAP NOTIFY or
// IDLE, file notifications for Maildir and mbox) starts the next pass at
// once: jobs names the jobs whose sources to watch.
func watch(ctx context.Context, in *invocation, stderr io.Writer, watching bool, jobs func() []Job, pass func(context.Context) (int, error)) (int, error) {
	if watching {
		inner := pass
		pass = func(ctx context.Context) (int, error) { return graced(ctx, inner) }
	}
	code, err := pass(ctx)
	rs := in.effective
	if rs == nil || !rs.Watch || code == exitUsage || ctx.Err() != nil {
		return code, err
	}
	wctx, stopWakes := context.WithCancel(ctx)
	defer stopWakes()
	wake := wakes(wctx, jobs(), newLogger(rs, stderr))
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
		case <-wake:
			t.Stop() // the source changed: a pass now
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

// maxWakeBackoff bounds the wait before a broken watcher connects again.
const maxWakeBackoff = time.Minute

// wakes starts a watcher on the source of each job that can say when it
// changes (source.Watcher) and returns the channel they signal on. A
// watcher asks for a pass as soon as it is watching, since what changed
// before went unseen; one whose connection breaks connects again after a
// growing wait (and so asks again once it is back); one
// whose source cannot watch stops, and the passes at the interval do.
func wakes(ctx context.Context, jobs []Job, log *slog.Logger) <-chan struct{} {
	wake := make(chan struct{}, 1)
	signal := func() {
		select {
		case wake <- struct{}{}:
		default: // one pending pass covers every change before it
		}
	}
	for _, j := range jobs {
		srcEP, _, err := j.endpoints()
		if err != nil {
			continue // the pass reports it
		}
		go func() {
			backoff := time.Second
			for ctx.Err() == nil {
				src, err := openSource(ctx, srcEP, j, log)
				if err == nil {
					w, ok := src.(source.Watcher)
					if !ok {
						src.Close()
						return
					}
					began := time.Now()
					err = w.Watch(ctx, signal)
					src.Close()
					if errors.Is(err, source.ErrCannotWatch) {
						log.Info("watch: changes are found by the passes alone", "source", srcEP.String(), "why", err.Error())
						return
					}
					if time.Since(began) > maxWakeBackoff {
						backoff = time.Second
					}
				}
				if ctx.Err() != nil {
					return
				}
				log.Debug("watch: connecting again", "source", srcEP.String(), "in", backoff, "error", err)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				backoff = min(2*backoff, maxWakeBackoff)
			}
		}()
	}
	return wake
}

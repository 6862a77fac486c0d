package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
	"github.com/mailferry/mailferry/store"
)

// runJob opens both ends and the checkpoint and runs one job, whose
// settings were checked (see invocation.apply). A dry run (plan) writes
// nothing: the destination is opened read-only if it exists, and the
// checkpoint only read.
func runJob(ctx context.Context, j Job, c *RunSettings, dryRun bool, stderr io.Writer) (*plan.Summary, error) {
	var progress plan.Progress
	if !dryRun && progressFor(c, stderr) {
		bar := newBarProgress(stderr, j.Name)
		defer bar.Close()
		progress, stderr = bar, bar
	}
	log := newLogger(c, stderr)
	rules, filter, err := j.selection()
	if err != nil {
		return nil, err
	}
	limits, err := j.Limits.limits()
	if err != nil {
		return nil, usageError{msg: err.Error()}
	}
	if j.Limits.DailyByteBudget == "" {
		if budget, why := presetBudget(j.Source, j.Destination); budget > 0 {
			limits.ByteBudget = budget
			log.Info("daily byte budget from the provider preset (daily_byte_budget: none lifts it)", "budget", humanBytes(budget), "why", why)
		}
	}
	dedup, err := plan.ParseDedup(j.Dedup)
	if err != nil {
		return nil, usageError{msg: err.Error()}
	}
	srcEP, dstEP, err := j.endpoints()
	if err != nil {
		return nil, err
	}
	jobID := srcEP.String() + " -> " + dstEP.String()
	ckptPath := j.Checkpoint
	if ckptPath == "" {
		if ckptPath, err = defaultCheckpoint(j.Name, jobID); err != nil {
			return nil, err
		}
	}

	// The source and the destination are opened at once: each is a few
	// round trips of connecting and logging in, a fifth of a second
	// through 20 ms each way with COMPRESS (a password prompt waits for
	// the other's: endpointEnv).
	var (
		dst    sink.Sink
		dstErr error
		opened = make(chan struct{})
	)
	go func() {
		defer close(opened)
		dst, dstErr = openDestination(ctx, dstEP, j.Destination, dryRun, log)
	}()
	src, err := openSource(ctx, srcEP, j, log)
	<-opened
	var opens []io.Closer
	if dstErr == nil {
		opens = append(opens, dst)
	}
	if err == nil {
		opens = append(opens, src)
	}
	defer closeAll(opens)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", srcEP, err)
	}
	if dstErr != nil {
		return nil, fmt.Errorf("open destination %s: %w", dstEP, dstErr)
	}

	var ckpt *state.Checkpoint
	if dryRun {
		ckpt, err = state.OpenReadOnly(ckptPath, jobID)
	} else {
		ckpt, err = state.Open(ckptPath, jobID)
	}
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()

	if c, ok := src.(source.CacheUser); ok {
		c.UseCache(ckpt)
	}

	props := store.Destination(dstEP)
	folderPar := cmp.Or(j.FolderParallelism, props.FolderParallelism)
	// Many in flight, few connections: into Maildir, deliveries waiting
	// together share one syncfs; into IMAP, they share a MULTIAPPEND. A
	// source reading one message per connection still reads only as many
	// at once as it has connections.
	workers := cmp.Or(j.Workers, props.Workers)
	grace := props.CrashGrace
	sum, err := plan.Run(ctx, src, dst, ckpt, plan.Options{Dedup: dedup, Workers: workers, WorkersChosen: j.Workers != 0, DryRun: dryRun, DeleteAfterCopy: j.DeleteAfterCopy, CrashGrace: grace,
		MirrorDeletes: j.MirrorDeletes, MaxDeleteFraction: j.MaxDeleteFraction, ForceDeletes: j.ForceDeletes, FolderParallelism: folderPar, Limits: limits,
		Folders: rules, Filter: filter, Progress: progress, Log: log})
	if errors.Is(err, plan.ErrNothingSelected) {
		err = fmt.Errorf("source %s: %w", srcEP, err)
	}
	if sum != nil && sum.FailedFolders > 0 && srcEP.Scheme == "mbox" && srcEP.Options.Get("folder") == "" && isFile(srcEP.Path) {
		// An mbox file's folder is named after the file: a name the
		// destination refuses is fixed by naming it.
		for _, f := range sum.Folders {
			if f.Error != "" {
				fmt.Fprintf(stderr, "mailferry: hint: folder %q is named after its mbox file; give it a name the destination takes with %s?folder=NAME\n", f.Name, srcEP)
				break
			}
		}
	}
	if cerr := ckpt.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return sum, err
}

// selection is the job's folder rules and filters.
func (j Job) selection() (plan.FolderRules, plan.Filter, error) {
	rules := j.Folders.rules()
	filter, err := j.Filters.filter()
	if err != nil {
		return rules, filter, usageError{msg: err.Error()}
	}
	if _, err := plan.NewFolderRules(rules); err != nil {
		return rules, filter, usageError{msg: err.Error()}
	}
	return rules, filter, nil
}

// endpoints parses the job's two URLs; a bad one is a usage error.
func (j Job) endpoints() (src, dst *endpoint.Endpoint, err error) {
	if src, err = endpoint.Parse(j.Source.URL); err != nil {
		return nil, nil, usageError{msg: "source: " + err.Error()}
	}
	if dst, err = endpoint.Parse(j.Destination.URL); err != nil {
		return nil, nil, usageError{msg: "destination: " + err.Error()}
	}
	return src, dst, nil
}

// defaultCheckpoint is $XDG_STATE_HOME/mailferry/NAME.ckpt; a job given on
// the command line is named after a hash of its endpoints.
func defaultCheckpoint(name, jobID string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no checkpoint directory (set XDG_STATE_HOME or use --checkpoint): %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	if name == "" {
		h := sha256.Sum256([]byte(jobID))
		name = "copy-" + hex.EncodeToString(h[:8])
	}
	return filepath.Join(dir, "mailferry", name+".ckpt"), nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// closeAll closes the source and the destination at once: each says
// LOGOUT on its connections and waits a round trip for the answers.
func closeAll(cs []io.Closer) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/mailferry/mailferry/internal/pool"
	"github.com/mailferry/mailferry/plan"
)

// runConfig runs the jobs of a config file, with the command line's
// settings on top of the file's.
func runConfig(ctx context.Context, path string, in *invocation, stdout, stderr io.Writer) (int, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return exitUsage, err
	}
	c, err := in.settings(cfg.Run)
	if err != nil {
		return exitUsage, err
	}
	jobs, err := selectJobs(cfg.Jobs, c)
	if err != nil {
		return exitUsage, err
	}
	for i := range jobs {
		if jobs[i], err = in.apply(jobs[i]); err != nil {
			return exitUsage, err
		}
	}
	if in.job.Checkpoint != "" && len(jobs) > 1 {
		return exitUsage, usagef("--checkpoint names one file, but %d jobs would share it; each job has its own by default", len(jobs))
	}
	if len(jobs) == 0 && c.Shard == "" {
		return exitUsage, usagef("no job to run in %s (--job %q, --jobs-from %q)", path, c.Job, c.JobsFrom)
	}
	par := max(1, min(c.Parallel, len(jobs)))
	jc := *c
	if par > 1 {
		jc.Progress = "never" // one bar cannot show several jobs
	}
	// A cap on connections per server holds across the jobs running at
	// once: each endpoint of each job gets its share (source and
	// destination may be the same server), so the total cannot pass it.
	maxConns := 0
	if c.MaxHostConnections > 0 {
		maxConns = max(1, c.MaxHostConnections/(2*par))
	}

	type result struct {
		sum  *plan.Summary
		code int
	}
	results := make([]result, len(jobs))
	var mu sync.Mutex // stderr lines from parallel jobs
	lockedStderr := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stderr.Write(p)
	})
	next, done := pool.Start(par, 0, func(i int) {
		j := jobs[i]
		j.Source.MaxConns, j.Destination.MaxConns = maxConns, maxConns
		sum, err := runJob(ctx, j, &jc, false, lockedStderr)
		code, err := outcome(sum, err)
		if err != nil {
			report(lockedStderr, fmt.Errorf("job %q: %w", j.Name, err))
		}
		results[i] = result{sum, code}
	})
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	done()

	var sums []namedSummary
	var failed []string
	worst := exitOK
	for i, r := range results {
		if r.sum == nil && r.code == exitOK { // not started: interrupted
			r.code = exitFailed
		}
		sums = append(sums, namedSummary{jobs[i].Name, r.sum, r.code})
		if r.code == exitFailed || r.code == exitIncomplete {
			failed = append(failed, jobs[i].Name)
		}
		worst = worse(worst, r.code)
	}
	printSummary(stdout, stderr, c, false, sums)
	writeReports(c, sums, stderr)
	if c.FailedFile != "" {
		data := strings.Join(failed, "\n")
		if data != "" {
			data += "\n"
		}
		if err := atomicfile.Write(c.FailedFile, []byte(data)); err != nil {
			report(stderr, fmt.Errorf("write --failed-file: %w", err))
		}
	}
	return worst, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// selectJobs applies --job, --jobs-from and --shard to the jobs of a
// config file.
func selectJobs(all []Job, c *RunSettings) ([]Job, error) {
	var only map[string]bool
	if c.JobsFrom != "" {
		data, err := os.ReadFile(c.JobsFrom)
		if err != nil {
			return nil, usagef("--jobs-from: %v", err)
		}
		only = map[string]bool{}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				only[l] = true
			}
		}
	}
	k, n, err := parseShard(c.Shard)
	if err != nil {
		return nil, err
	}
	if c.Job != "" && !slices.ContainsFunc(all, func(j Job) bool { return j.Name == c.Job }) {
		return nil, noSuchJob(c.Job, all)
	}
	var jobs []Job
	for _, j := range all {
		if c.Job != "" && j.Name != c.Job || only != nil && !only[j.Name] || n > 0 && shardOf(j.Name, n) != k {
			continue
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// noSuchJob is --job NAME that names no job: the hint lists those there are.
func noSuchJob(name string, all []Job) error {
	var names []string
	for _, j := range all {
		names = append(names, j.Name)
	}
	const most = 20
	list := strings.Join(names[:min(len(names), most)], ", ")
	if len(names) > most {
		list += fmt.Sprintf(", ... (%d in all)", len(names))
	}
	return usageError{msg: fmt.Sprintf("--job %q: no job of that name", name), hint: "the jobs are: " + list}
}

// parseShard reads "K/N" (0 <= K < N); "" is no sharding.
func parseShard(s string) (k, n int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, usagef("--shard %q: want K/N with 0 <= K < N, like 0/4", s)
	}
	return k, n, nil
}

// shardOf is the shard of a job: a stable hash of its name, so every
// machine running the same batch splits it the same way.
func shardOf(name string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64() % uint64(n))
}

// worse orders exit codes by how bad they are: 2 > 1 > 4 > 3 > 5 > 0.
func worse(a, b int) int {
	rank := map[int]int{exitOK: 0, exitBudget: 1, exitIncomplete: 2, exitLocked: 3, exitFailed: 4, exitUsage: 5}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

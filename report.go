package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/mailferry/mailferry/plan"
)

// namedSummary is one job's outcome: its summary (nil if it failed
// before it had one) and its exit code.
type namedSummary struct {
	name string
	sum  *plan.Summary
	code int
}

// started keeps the jobs that have a summary.
func started(sums []namedSummary) []namedSummary {
	var out []namedSummary
	for _, s := range sums {
		if s.sum != nil {
			out = append(out, s)
		}
	}
	return out
}

func outcome(sum *plan.Summary, err error) (int, error) {
	switch {
	case err != nil:
		return exitCode(err), err
	case sum.Incomplete():
		return exitIncomplete, nil
	case sum.BudgetReached:
		return exitBudget, nil
	}
	return exitOK, nil
}

// writeReports writes --summary-file and --metrics-file. A report that
// cannot be written is an error on stderr, not a change of exit code: the
// mail is where the exit code says.
func writeReports(c *RunSettings, sums []namedSummary, stderr io.Writer) {
	if c.SummaryFile != "" {
		if err := atomicfile.Write(c.SummaryFile, summaryJSON(started(sums))); err != nil {
			report(stderr, fmt.Errorf("write --summary-file: %w", err))
		}
	}
	if c.MetricsFile != "" {
		previous, _ := os.ReadFile(c.MetricsFile) // none yet: no success to carry over
		if err := atomicfile.Write(c.MetricsFile, metricsText(sums, time.Now(), previous)); err != nil {
			report(stderr, fmt.Errorf("write --metrics-file: %w", err))
		}
	}
}

func printSummary(stdout, stderr io.Writer, c *RunSettings, dryRun bool, sums []namedSummary) {
	// With --json the summary is on stdout, for a program; the verdict
	// stays on stderr, for the person or the cron mail.
	sums = started(sums)
	if c.JSON {
		stdout.Write(summaryJSON(sums))
	} else if dryRun {
		for _, s := range sums {
			printPlan(stdout, s.sum)
		}
	}
	if c.Quiet || dryRun {
		return
	}
	for _, s := range sums {
		if c.quietNoop && s.code == exitOK && !eventful(s.sum) {
			continue
		}
		prefix := ""
		if s.name != "" {
			prefix = s.name + ": "
		}
		fmt.Fprintln(stderr, termSafe(prefix)+verdict(s.sum))
	}
}

func printPlan(w io.Writer, s *plan.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FOLDER\tDESTINATION\tMESSAGES\tTO COPY\tDUPLICATES\tPRESENT\tFILTERED\tFLAGS\tBYTES\t")
	for _, f := range s.Folders {
		// Why a folder lands under another name (special use, map,
		// prefix), as the README promises plan shows.
		note := ""
		if f.MappedBy != "" {
			note = "  (" + termSafe(f.MappedBy) + ")"
		}
		if f.Error != "" {
			note += "  error: " + termSafe(f.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", termSafe(f.Name), termSafe(f.Destination), f.Messages, f.Copied, f.DuplicatesSkipped, f.AlreadyPresent, f.Filtered, f.FlagsUpdated, humanBytes(f.Bytes), note)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Copied, s.DuplicatesSkipped, s.AlreadyPresent, s.Filtered, s.FlagsUpdated, humanBytes(s.Bytes))
	tw.Flush()
	if s.MirrorDeleted > 0 {
		fmt.Fprintf(w, "mirror: %d copies would be deleted at the destination (gone from the source)\n", s.MirrorDeleted)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jobsSummary is the --json output of run: totals, and each job.
type jobsSummary struct {
	plan.Summary
	Jobs []jobSummary `json:"jobs"`
}

type jobSummary struct {
	Name string `json:"name"`
	*plan.Summary
}

func totals(sums []namedSummary) jobsSummary {
	out := jobsSummary{Summary: plan.Summary{Folders: []*plan.FolderSummary{}, Errors: []plan.ErrorEntry{}}, Jobs: []jobSummary{}}
	for _, s := range sums {
		t := &out.Summary
		t.Copied += s.sum.Copied
		t.DuplicatesSkipped += s.sum.DuplicatesSkipped
		t.AlreadyPresent += s.sum.AlreadyPresent
		t.Failed += s.sum.Failed
		t.FailedFolders += s.sum.FailedFolders
		t.FlagsUpdated += s.sum.FlagsUpdated
		t.Vanished += s.sum.Vanished
		t.Deleted += s.sum.Deleted
		t.MirrorDeleted += s.sum.MirrorDeleted
		t.Bytes += s.sum.Bytes
		t.ElapsedSeconds += s.sum.ElapsedSeconds
		t.Folders = append(t.Folders, s.sum.Folders...)
		t.Errors = append(t.Errors, s.sum.Errors...)
		out.Jobs = append(out.Jobs, jobSummary{s.name, s.sum})
	}
	return out
}

// eventful reports whether a run did anything worth a line.
func eventful(s *plan.Summary) bool {
	return s.Copied+s.Failed+s.FailedFolders+s.FlagsUpdated+s.Deleted+s.MirrorDeleted > 0
}

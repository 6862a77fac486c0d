package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/mailferry/mailferry/plan"
)

// verifyJobs runs verify for each job: read-only on both ends, no
// checkpoint. Exit 0 when complete, 3 when anything is missing or differs.
func verifyJobs(ctx context.Context, jobs []Job, c *RunSettings, stdout, stderr io.Writer) (int, error) {
	log := newLogger(c, stderr)
	worst := exitOK
	var out []namedVerify
	for _, j := range jobs {
		sum, err := verifyJob(ctx, j, c, log)
		if err != nil {
			if len(jobs) > 1 {
				err = fmt.Errorf("job %q: %w", j.Name, err)
			}
			report(stderr, err)
			worst = worse(worst, exitCode(err))
			continue
		}
		out = append(out, namedVerify{j.Name, sum})
		if !sum.Complete() {
			worst = worse(worst, exitIncomplete)
		}
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(out) == 1 && len(jobs) == 1 {
			enc.Encode(out[0].sum)
		} else {
			enc.Encode(out)
		}
		return worst, nil
	}
	for _, v := range out {
		if v.name != "" {
			fmt.Fprintf(stdout, "job %s\n", v.name)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "FOLDER\tDESTINATION\tMESSAGES\tPRESENT\tMISSING\tDIFFERING\tEXTRA\t")
		for _, f := range v.sum.Folders {
			note := ""
			if f.Error != "" {
				note = "  error: " + termSafe(f.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", termSafe(f.Name), termSafe(f.Destination), f.Messages, f.Present, f.Missing, f.Differing, f.Extra, note)
		}
		fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t\n", v.sum.Present, v.sum.Missing, v.sum.Differing, v.sum.Extra)
		tw.Flush()
		for i, e := range v.sum.Errors {
			if i == 20 {
				fmt.Fprintf(stderr, "mailferry: ... and %d more (see --json)\n", len(v.sum.Errors)-20)
				break
			}
			fmt.Fprintf(stderr, "mailferry: %s: %s: %s\n", termSafe(e.Folder), termSafe(e.Message), termSafe(e.Error))
		}
	}
	return worst, nil
}

type namedVerify struct {
	name string
	sum  *plan.VerifySummary
}

// MarshalJSON gives each job's summary its name.
func (n namedVerify) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name string `json:"name"`
		*plan.VerifySummary
	}{n.name, n.sum})
}

func verifyJob(ctx context.Context, j Job, c *RunSettings, log *slog.Logger) (*plan.VerifySummary, error) {
	dedup, err := plan.ParseDedup(j.Dedup)
	if err != nil {
		return nil, usageError{msg: err.Error()}
	}
	// What the copy with the same arguments promised: its folders, their
	// destination names and its filters.
	rules, filter, err := j.selection()
	if err != nil {
		return nil, err
	}
	srcEP, dstEP, err := j.endpoints()
	if err != nil {
		return nil, err
	}
	src, err := openSource(ctx, srcEP, j, log)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", srcEP, err)
	}
	defer src.Close()
	dst, err := openDestination(ctx, dstEP, j.Destination, true, log) // read-only
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dstEP, err)
	}
	defer dst.Close()
	return plan.Verify(ctx, src, dst, plan.VerifyOptions{Dedup: dedup, Deep: c.Deep, Folders: rules, Filter: filter, Log: log})
}

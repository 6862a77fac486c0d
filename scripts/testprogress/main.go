// Command testprogress prints a `go test -json` stream as it goes: one
// line per top-level test as it ends, the whole output of a test that
// failed, and one line per package. `go test` alone prints a package only
// when all of it is done, which for the end-to-end package is minutes of
// silence. scripts/test.sh pipes through it; it exits 1 if anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	start := time.Now()
	output := map[string][]string{} // package or package/test: its lines so far
	failed, passed, skipped := 0, 0, 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: a build error, say
			continue
		}
		key := e.Package
		if e.Test != "" {
			key += "/" + e.Test
		}
		top := e.Test != "" && !strings.Contains(e.Test, "/")
		stamp := fmt.Sprintf("%5.0fs", time.Since(start).Seconds())
		switch e.Action {
		case "output", "build-output":
			output[key] = append(output[key], e.Output)
			if e.Test != "" {
				// A subtest's lines belong to its top-level test too.
				root, _, _ := strings.Cut(e.Test, "/")
				if root != e.Test {
					output[e.Package+"/"+root] = append(output[e.Package+"/"+root], e.Output)
				}
			}
		case "pass", "fail", "skip":
			switch {
			case top && e.Action == "fail":
				failed++
				fmt.Fprintf(out, "%s FAIL %s %s (%.1fs)\n", stamp, short(e.Package), e.Test, e.Elapsed)
				fmt.Fprint(out, strings.Join(output[key], ""))
			case top && e.Action == "skip":
				skipped++
				fmt.Fprintf(out, "%s skip %s %s: %s\n", stamp, short(e.Package), e.Test, skipReason(output[key]))
			case top:
				passed++
				fmt.Fprintf(out, "%s ok   %s %s (%.1fs)\n", stamp, short(e.Package), e.Test, e.Elapsed)
			case e.Test == "" && e.Action == "fail":
				failed++
				fmt.Fprintf(out, "%s FAIL %s (%.1fs)\n", stamp, e.Package, e.Elapsed)
				fmt.Fprint(out, strings.Join(output[key], ""))
			case e.Test == "" && e.Action == "pass":
				fmt.Fprintf(out, "%s ok   %s (%.1fs)\n", stamp, e.Package, e.Elapsed)
			}
			if e.Test == "" || top {
				delete(output, key)
			}
		}
	}
	fmt.Fprintf(out, "%d passed, %d skipped, %d failed in %s\n", passed, skipped, failed, time.Since(start).Round(time.Second))
	if failed > 0 || sc.Err() != nil {
		return 1
	}
	return 0
}

// short drops the module path from a package name.
func short(pkg string) string {
	if _, rest, ok := strings.Cut(pkg, "mailferry/mailferry/"); ok {
		return rest
	}
	return "."
}

// skipReason is the t.Skip message among a skipped test's lines.
func skipReason(lines []string) string {
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "===") || l == "" {
			continue
		}
		return l
	}
	return "(no reason given)"
}

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/dovecottest"
)

// result is one cell of the table.
type result struct {
	tool, path string
	msgs       int
	mb         float64
	walls      []time.Duration
	cpus       []time.Duration // the tool's own user+system CPU, per run
	rssKB      int64
	note       string
}

// add records one run.
func (r *result) add(wall time.Duration, u usage) {
	r.walls = append(r.walls, wall)
	r.rssKB = max(r.rssKB, u.rssKB)
	if u.cpu > 0 {
		r.cpus = append(r.cpus, u.cpu)
	}
}

func (r *result) median() time.Duration { return median(r.walls) }

func median(d []time.Duration) time.Duration {
	w := slices.Clone(d)
	slices.Sort(w)
	return w[len(w)/2]
}

// baselineTool names the rows of MAILFERRY_BENCH_BASELINE's binary.
const baselineTool = "mailferry (baseline)"

// isMailferry reports whether tool is mailferry, this build or the
// baseline's: its runs must leave every message, and their retries are
// noted.
func isMailferry(tool string) bool { return tool == "mailferry" || tool == baselineTool }

// wantPath reports whether MAILFERRY_BENCH_PATHS asks for path.
func wantPath(path string) bool {
	sel := os.Getenv("MAILFERRY_BENCH_PATHS")
	if sel == "" {
		return true
	}
	p := strings.ToLower(strings.ReplaceAll(path, "→", "-"))
	for _, w := range strings.Split(strings.ToLower(sel), ",") {
		if w = strings.TrimSpace(w); w != "" && strings.Contains(p, w) {
			return true
		}
	}
	return false
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// usage is what GNU time reports of a run: its peak RSS (KB) and the CPU
// it spent itself (user and system), so a change that frees a core the
// servers share shows even where the wall time does not.
type usage struct {
	rssKB int64
	cpu   time.Duration
}

// timed runs a command and returns its wall time and usage. The usage
// comes from GNU time: Go starts children sharing its memory until exec,
// so their own rusage would count the test process too.
func timed(t testing.TB, env []string, name string, args ...string) (time.Duration, usage, string, error) {
	rssFile := filepath.Join(t.TempDir(), "rss")
	var cmd *exec.Cmd
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		cmd = exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", rssFile, name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Every run starts with nothing left to write back from the one
	// before, so no tool pays for another's dirty pages.
	syscall.Sync()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var u usage
	if b, rerr := os.ReadFile(rssFile); rerr == nil {
		// The last line: GNU time writes a note on a failed command first.
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) == 3 {
			u.rssKB, _ = strconv.ParseInt(f[0], 10, 64)
			user, _ := strconv.ParseFloat(f[1], 64)
			sys, _ := strconv.ParseFloat(f[2], 64)
			u.cpu = time.Duration((user + sys) * float64(time.Second))
		}
	}
	if err != nil {
		return wall, u, out.String(), fmt.Errorf("%s: %v\n%s", name, err, tail(out.String(), 2000))
	}
	return wall, u, out.String(), nil
}

// machineCPU says what the whole machine spent busy since busyCPU gave
// cpu0, against what its cores could have spent in wall.
func machineCPU(cpu0 float64, wall time.Duration) string {
	return fmt.Sprintf("the machine's CPU %.2f s of %.2f", busyCPU()-cpu0, float64(runtime.NumCPU())*wall.Seconds())
}

// busyCPU returns the seconds of CPU the whole machine has spent busy
// (all but idle and iowait, /proc/stat), for the share a run's servers
// took beside mailferry; 0 where there is no /proc/stat.
func busyCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 {
			continue // idle, iowait
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func imapClient(t testing.TB, srv *dovecottest.Server, user string) *imapclient.Client {
	c, err := dialIMAP(dovecottest.Addr(srv.IMAPPort), user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialIMAP connects to addr in plain text and logs in as user.
func dialIMAP(addr, user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, dovecottest.Password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func countIMAP(t testing.TB, srv *dovecottest.Server, user string) int {
	c := imapClient(t, srv, user)
	defer c.Close()
	l, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range l {
		if m.Status != nil && m.Status.NumMessages != nil {
			n += int(*m.Status.NumMessages)
		}
	}
	return n
}

func printTable(t *testing.T, results []*result, runs int) {
	base := map[string]time.Duration{}
	for _, r := range results {
		if r.tool == "mailferry" && len(r.walls) > 0 {
			base[r.path] = r.median()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| tool | path | messages | MB | wall s (median of %d) | msgs/s | MB/s | peak RSS MB | CPU s | mailferry is N× faster | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n", runs)
	for _, r := range results {
		if len(r.walls) == 0 {
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | | | | | | | %s |\n", r.tool, r.path, r.msgs, r.mb, r.note)
			continue
		}
		m := r.median().Seconds()
		ratio := ""
		if bw, ok := base[r.path]; ok && r.tool != "mailferry" && r.tool != "(limit)" {
			ratio = fmt.Sprintf("%.1f×", m/bw.Seconds())
			if r.tool == baselineTool {
				ratio = fmt.Sprintf("%.2f×", m/bw.Seconds()) // a change's gain is smaller
			}
		}
		rss := ""
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%.0f", float64(r.rssKB)/1024)
		}
		cpu := ""
		if len(r.cpus) > 0 {
			cpu = fmt.Sprintf("%.2f", median(r.cpus).Seconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.2f | %.0f | %.1f | %s | %s | %s | %s |\n", r.tool, r.path, r.msgs, r.mb, m, float64(r.msgs)/m, r.mb/m, rss, cpu, ratio, r.note)
	}
	t.Log(b.String())
	if out := os.Getenv("MAILFERRY_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

// buildBinary builds mailferry into dir, as every timed run uses it.
// inTurn is the order n tools take their turns in run i: as listed, then
// backwards, so that no tool always comes first.
func inTurn(i, n int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = k
		if i%2 == 1 {
			order[k] = n - 1 - k
		}
	}
	return order
}

func buildBinary(t testing.TB, dir string) string {
	bin := filepath.Join(dir, "mailferry")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
)

// TestWAN times IMAP→IMAP over a link as a migration meets it: 20 ms each
// way and 50 Mbit/s shared by every connection in each direction (the
// proxy's token bucket), on MAILFERRY_BENCH_WAN_N messages (default
// 1000) written in words, against a Dovecot offering COMPRESS=DEFLATE;
// without compression and with it (?compress=on), and the same on loopback,
// where the link is not the limit and compression is only CPU spent. It
// fails only if messages are lost or doubled.
func TestWAN(t *testing.T) {
	n := envInt("MAILFERRY_BENCH_N", 0)
	if n == 0 || !wantPath("wan") {
		t.Skip("a benchmark: run bench/run.sh, or set MAILFERRY_BENCH_N")
	}
	t.Setenv("MAILFERRY_BENCH_OUT", "") // TestBenchmark's table is the file's
	wn := min(envInt("MAILFERRY_BENCH_WAN_N", 1000), n)
	runs := max(envInt("MAILFERRY_BENCH_RUNS", 3), 1)
	srv := dovecottest.Start(t, dovecottest.Options{Compress: true})
	c := generateText(wn)
	mb := float64(c.bytes) / (1 << 20)
	src := srv.NewUser(t)
	c.writeMaildir(t, srv.Maildir(src), false)
	srv.Own(t, src)
	if got := countIMAP(t, srv, src); got != wn {
		t.Fatalf("source holds %d messages, want %d", got, wn)
	}
	work := t.TempDir()
	bin := buildBinary(t, work)
	px := faultproxy.Start(t, dovecottest.Addr(srv.IMAPPort), &faultproxy.Proxy{Delay: 20 * time.Millisecond, Rate: 50_000_000 / 8})
	env := []string{"MAILFERRY_SRC_PASSWORD=" + dovecottest.Password, "MAILFERRY_DST_PASSWORD=" + dovecottest.Password}
	extra := strings.Fields(os.Getenv("MAILFERRY_BENCH_FLAGS")) // an A/B of a setting, as in TestBenchmark
	// Every mode, and with MAILFERRY_BENCH_BASELINE the other build's too,
	// takes each link in turn, run by run (see measureN on order).
	type mode struct{ tool, bin, query string }
	modes := []mode{{"mailferry", bin, ""}, {"mailferry, ?compress=on", bin, "&compress=on"}}
	if base := os.Getenv("MAILFERRY_BENCH_BASELINE"); base != "" {
		modes = append(modes, mode{baselineTool, base, ""}, mode{baselineTool + ", ?compress=on", base, "&compress=on"})
	}
	var results []*result
	for _, link := range []struct{ name, addr string }{
		{"IMAP→IMAP, 20 ms each way, 50 Mbit/s, text", px.Addr},
		{"IMAP→IMAP, loopback, text", dovecottest.Addr(srv.IMAPPort)},
	} {
		rs := make([]*result, len(modes))
		for k, m := range modes {
			rs[k] = &result{tool: m.tool, path: link.name, msgs: wn, mb: mb}
			results = append(results, rs[k])
		}
		for i := range runs {
			for _, k := range inTurn(i, len(modes)) {
				mode, r := modes[k], rs[k]
				if r.note != "" {
					continue
				}
				u := srv.NewUser(t)
				up0, down0 := px.Carried()
				cpu0 := busyCPU()
				url := func(user string) string { return fmt.Sprintf("imap://%s@%s?tls=none%s", user, link.addr, mode.query) }
				args := []string{"copy", url(src), url(u), "--checkpoint", filepath.Join(work, fmt.Sprintf("%s-%d.ckpt", u, i))}
				wall, use, out, err := timed(t, env, mode.bin, append(args, extra...)...)
				if err != nil {
					r.note = "failed"
					t.Logf("%s %s: %v\n%s", mode.tool, link.name, err, tail(out, 2000))
					continue
				}
				if got := countIMAP(t, srv, u); got != wn {
					t.Errorf("%s %s: destination holds %d of %d", mode.tool, link.name, got, wn)
				}
				r.add(wall, use)
				// What bounds the run: the link (its bytes at 50 Mbit/s) or
				// the two cores (the machine's CPU, Dovecot's included).
				cpu := machineCPU(cpu0, wall)
				if link.addr == px.Addr {
					up, down := px.Carried()
					t.Logf("%s, %s, run %d: %v; the link carried %.1f MB up, %.1f MB down; %s", mode.tool, link.name, i+1,
						wall.Round(10*time.Millisecond), float64(up-up0)/(1<<20), float64(down-down0)/(1<<20), cpu)
				} else {
					t.Logf("%s, %s, run %d: %v; %s", mode.tool, link.name, i+1, wall.Round(10*time.Millisecond), cpu)
				}
			}
		}
	}
	printTable(t, results, runs)
}

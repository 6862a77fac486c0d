package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/dovecottest"
)

// A batch of 50 accounts on one Dovecot, run as four shards side by side
// (as a Kubernetes Indexed Job would): every account is copied by exactly
// one shard, each with its own summary; an account that fails is written
// to --failed-file, and --jobs-from runs only it again.
func TestBatchShards(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	good, bad := filepath.Join(dir, "pass"), filepath.Join(dir, "wrong")
	os.WriteFile(good, []byte(dovecottest.Password+"\n"), 0o600)
	os.WriteFile(bad, []byte("not the password\n"), 0o600)

	const accounts = 50
	var cfg strings.Builder
	cfg.WriteString("jobs:\n")
	dsts := map[string]string{}
	for i := range accounts {
		src, dst := srv.NewUser(t), srv.NewUser(t)
		var msgs [][]byte
		for k := range 3 {
			msgs = append(msgs, []byte(fmt.Sprintf("Message-ID: <%d.%d@batch.test>\r\nSubject: account %d message %d\r\n\r\nbody\r\n", i, k, i, k)))
		}
		srv.Deliver(t, src, msgs, nil)
		name := fmt.Sprintf("acct-%02d", i)
		dsts[name] = dst
		pass := good
		if i == 17 {
			pass = bad // fails until the file is mended
		}
		fmt.Fprintf(&cfg, "  - name: %s\n    source: {url: %q, password_file: %q}\n    destination: {url: %q, password_file: %q}\n",
			name, imapURL(srv, src), pass, imapURL(srv, dst), good)
	}
	cfgPath := filepath.Join(dir, "batch.yaml")
	os.WriteFile(cfgPath, []byte(cfg.String()), 0o600)

	type shardResult struct {
		code int
		sum  jobsSummary
		err  string
	}
	results := make([]shardResult, 4)
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			failed := filepath.Join(dir, fmt.Sprintf("failed-%d", k))
			code := run(context.Background(), []string{"run", cfgPath, "--shard", fmt.Sprintf("%d/4", k), "--parallel", "4", "--max-host-connections", "16", "--json", "--failed-file", failed}, &out, &errb)
			results[k].code, results[k].err = code, errb.String()
			json.Unmarshal(out.Bytes(), &results[k].sum)
		}()
	}
	wg.Wait()

	seen := map[string]int{}
	var failedShard int
	for k, r := range results {
		for _, j := range r.sum.Jobs {
			seen[j.Name]++
			if j.Name != "acct-17" && (j.Copied != 3 || j.Failed != 0) {
				t.Errorf("shard %d, %s: copied %d, failed %d", k, j.Name, j.Copied, j.Failed)
			}
		}
		if strings.Contains(r.err, `job "acct-17"`) {
			failedShard = k
			if r.code != exitFailed {
				t.Errorf("shard %d ran the failing account but exited %d", k, r.code)
			}
		} else if r.code != exitOK {
			t.Errorf("shard %d: exit %d\n%s", k, r.code, r.err)
		}
	}
	for name := range dsts {
		if want := map[bool]int{true: 0, false: 1}[name == "acct-17"]; seen[name] != want {
			t.Errorf("%s in %d shard summaries, want %d", name, seen[name], want)
		}
	}
	failedList, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("failed-%d", failedShard)))
	if string(failedList) != "acct-17\n" {
		t.Fatalf("failed file of shard %d: %q", failedShard, failedList)
	}
	for name, dst := range dsts {
		counts, _ := imapCounts(t, srv, dst, "INBOX")
		if want := map[bool]int{true: 0, false: 3}[name == "acct-17"]; counts["INBOX"] != want {
			t.Errorf("%s: destination holds %d messages, want %d", name, counts["INBOX"], want)
		}
	}

	// Mend the password and retry only what failed.
	time.Sleep(10 * time.Millisecond)
	cfgText, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, bytes.ReplaceAll(cfgText, []byte(bad), []byte(good)), 0o600)
	sum := copyJSON(t, "run", cfgPath, "--jobs-from", filepath.Join(dir, fmt.Sprintf("failed-%d", failedShard)))
	if sum.Copied != 3 {
		t.Fatalf("retry of the failed account copied %d", sum.Copied)
	}
	if counts, _ := imapCounts(t, srv, dsts["acct-17"], "INBOX"); counts["INBOX"] != 3 {
		t.Fatalf("acct-17 holds %d after the retry", counts["INBOX"])
	}

	// Bad shard specifications are usage errors.
	for _, s := range []string{"4/4", "x/4", "1", "-1/2"} {
		if code, _, _ := cli(t, "run", cfgPath, "--shard", s); code != exitUsage {
			t.Errorf("--shard %s: exit %d", s, code)
		}
	}
}

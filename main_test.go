package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sinkimap "github.com/mailferry/mailferry/sink/imap"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/state"
)

// cli runs mailferry in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMain(m *testing.M) {
	// Keep default checkpoints out of the user's home.
	dir, _ := os.MkdirTemp("", "mailferry-state")
	os.Setenv("XDG_STATE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestSampleCopyAndRerun(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "demo")
	code, out, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+dst, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum plan.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if sum.Copied != 7 || sum.Failed != 0 || len(sum.Folders) != 4 || sum.Bytes == 0 {
		t.Fatalf("summary: %+v", sum)
	}
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"copied", "duplicates_skipped", "already_present", "failed", "bytes", "folders", "elapsed_seconds", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("--json lacks %q", k)
		}
	}
	code, out, _ = cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+dst, "--json")
	json.Unmarshal([]byte(out), &sum)
	if code != exitOK || sum.Copied != 0 || sum.AlreadyPresent != 7 {
		t.Fatalf("re-run: exit %d, %+v", code, sum)
	}
	// plan on a fresh destination shows what would be copied, per folder,
	// and creates nothing.
	fresh := filepath.Join(t.TempDir(), "fresh")
	code, out, _ = cli(t, "plan", "maildir:examples/sample-maildir", "maildir:"+fresh)
	if code != exitOK || !strings.Contains(out, "Entwürfe") || !strings.Contains(out, "TO COPY") {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatal("plan created the destination")
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no args", nil, exitUsage, "Usage"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"one endpoint", []string{"copy", "maildir:/x"}, exitUsage, "source and a destination"},
		{"bad scheme", []string{"copy", "ftp://x", "maildir:/y"}, exitUsage, `unknown scheme "ftp"`},
		{"bad dedup", []string{"copy", "maildir:examples/sample-maildir", "maildir:" + dir + "/d", "--dedup", "fuzzy"}, exitUsage, "unknown dedup mode"},
		{"bad flag", []string{"copy", "--bogus"}, exitUsage, "bogus"},
		{"missing source", []string{"copy", "maildir:" + dir + "/nonexistent", "maildir:" + dir + "/d"}, exitFailed, "open source maildir:" + dir + "/nonexistent"},
		{"unwritable destination", []string{"copy", "maildir:examples/sample-maildir", "maildir:" + file + "/sub"}, exitFailed, "open destination"},
		{"missing config", []string{"run", dir + "/none.yaml"}, exitUsage, "none.yaml"},
		{"version", []string{"version"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
			if code != exitOK && code != exitUsage && !strings.Contains(stderr, "mailferry: error: ") {
				t.Fatalf("error not in the mailferry: error: form: %q", stderr)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "jobs:\n  - name: a\n    sourse: maildir:/x\n", `line 3: unknown key "sourse"`},
		{"unknown endpoint key", "jobs:\n  - name: a\n    source:\n      url: maildir:/x\n      pasword: x\n    destination: maildir:/y\n", `line 5: unknown key "pasword"`},
		{"bad url", "jobs:\n  - name: a\n    source: ftp://x\n    destination: maildir:/y\n", `line 3: job "a": source: bad endpoint`},
		{"bad name", "jobs:\n  - name: a/b\n    source: maildir:/x\n    destination: maildir:/y\n", `line 2: job "a/b": name`},
		{"duplicate name", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n", `line 5: job name "a" used twice`},
		{"bad dedup", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n    dedup: maybe\n", `unknown dedup mode`},
		{"wrong type", "jobs:\n  - name: a\n    workers: many\n", `line 3`},
		{"empty", "", "no jobs"},
		{"no jobs", "jobs: []\n", "no jobs"},
		{"tab", "jobs:\n\t- name: a\n", "line 2"},
		{"missing destination", "jobs:\n  - name: a\n    source: maildir:/x\n", "destination: missing"},
		{"password on maildir", "jobs:\n  - name: a\n    source: {url: 'maildir:/x', password_file: /p}\n    destination: maildir:/y\n", "line 3: job \"a\": source: maildir takes no password"},
		{"indentation", "jobs:\n  - name: a\n    source: maildir:/x\n   destination: maildir:/y\n", "line 4: its indentation matches no line above it"},
		{"endpoint key at job level", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n    password_cmd: pass x\n", `line 5: unknown key "password_cmd" here: it belongs to an endpoint`},
		{"not a number", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n    workers: many\n", `line 5: "many" is not a number`},
		{"not a list", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n    folders:\n      exclude: Trash\n", `line 6: "Trash" should be a list, like [Trash]`},
		{"bad date at its line", "jobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n\n    filters:\n      since: yesterday\n", `line 7: job "a": filters: since: "yesterday" is not a date`},
		{"bad enum at its line", "progress: sometimes\njobs:\n  - name: a\n    source: maildir:/x\n    destination: maildir:/y\n    dedup: content\n    workers: 2\n    limits:\n      max_bytes_per_second: fast\n", `line 9: job "a": limits: max_bytes_per_second: "fast" is not a size`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o600)
			code, _, stderr := cli(t, "run", p)
			if code != exitUsage || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, p) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestRunConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`jobs:
  - name: first
    source: maildir:%[2]s
    destination:
      url: maildir:%[1]s/one
    checkpoint: %[1]s/first.ckpt
  - name: second
    source: maildir:%[2]s
    destination: maildir:%[1]s/two?layout=fs
    dedup: content
    workers: 2
`, dir, sampleMaildir(t))
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(cfg), 0o600)
	code, out, stderr := cli(t, "run", p, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var js struct {
		Copied int `json:"copied"`
		Jobs   []struct {
			Name   string `json:"name"`
			Copied int    `json:"copied"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Copied != 14 || len(js.Jobs) != 2 || js.Jobs[1].Name != "second" {
		t.Fatalf("summary %s (%v)", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "first.ckpt")); err != nil {
		t.Fatal("checkpoint not where the config says")
	}
	if _, err := os.Stat(filepath.Join(dir, "two", "Archive", "2024", "cur")); err != nil {
		t.Fatal("fs layout not used")
	}
	code, _, stderr = cli(t, "run", p, "--job", "second")
	if code != exitOK || !strings.Contains(stderr, "second: 0 copied") {
		t.Fatalf("re-run of one job: exit %d, %q", code, stderr)
	}
	if code, _, _ := cli(t, "run", p, "--job", "third"); code != exitUsage {
		t.Fatalf("unknown job: exit %d", code)
	}
}

func TestLockHeld(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "job.ckpt")
	dst := "maildir:" + filepath.Join(t.TempDir(), "d")
	// Hold the checkpoint as a running copy would.
	c, err := state.Open(ckpt, "maildir:examples/sample-maildir -> "+dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", dst, "--checkpoint", ckpt)
	if code != exitLocked || !strings.Contains(stderr, "in use by another mailferry run") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the second run waited instead of failing fast")
	}
}

func TestDamagedCheckpoint(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "job.ckpt")
	os.WriteFile(ckpt, bytes.Repeat([]byte("garbage!"), 1000), 0o600)
	code, _, stderr := cli(t, "copy", "maildir:examples/sample-maildir", "maildir:"+t.TempDir(), "--checkpoint", ckpt)
	if code != exitFailed || !strings.Contains(stderr, "damaged") || !strings.Contains(stderr, "move the checkpoint file aside") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}

// A message that cannot be stored is named, others carry on, exit code 3,
// and the next run (once the cause is gone) completes.
func TestPartialFailureExit3(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "cur"), 0o700)
	os.MkdirAll(filepath.Join(src, ".bad.name", "cur"), 0o700) // the folder "bad/name"
	os.MkdirAll(filepath.Join(src, ".Good", "cur"), 0o700)
	os.WriteFile(filepath.Join(src, "cur", "1.a:2,S"), []byte("Message-ID: <1@x>\n\nx\n"), 0o600)
	os.WriteFile(filepath.Join(src, ".Good", "cur", "2.a:2,S"), []byte("Message-ID: <2@x>\n\nx\n"), 0o600)
	dst := t.TempDir()
	// In the fs layout the destination cannot hold a folder named "cur".
	os.MkdirAll(filepath.Join(src, ".cur", "cur"), 0o700)
	os.WriteFile(filepath.Join(src, ".cur", "cur", "3.a:2,S"), []byte("Message-ID: <3@x>\n\nx\n"), 0o600)
	code, out, _ := cli(t, "copy", "maildir:"+src, "maildir:"+dst+"?layout=fs", "--json")
	var sum plan.Summary
	json.Unmarshal([]byte(out), &sum)
	if code != exitIncomplete || sum.Copied != 2 || len(sum.Errors) != 1 || sum.Errors[0].Folder != "cur" {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// The binary, killed with SIGKILL at random instants while copying, run
// after run until one gets to finish, leaves a destination that the next
// run completes with every message exactly once.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "src")
	const n = 3000
	makeMaildir(src, n)
	dst := filepath.Join(dir, "dst")
	ckpt := filepath.Join(dir, "ckpt")
	args := []string{"copy", "maildir:" + src, "maildir:" + dst, "--checkpoint", ckpt, "--quiet"}
	rng := rand.New(rand.NewPCG(1, 2))
	// Killed until a run gets to finish: after that every run is a no-op,
	// and killing those tests nothing (how many runs the copy spans
	// depends on the machine's speed, not on the code under test).
	kills := 0
	for attempt := 0; attempt < 40; attempt++ {
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil {
			break
		}
		kills++
	}
	out, err := exec.Command(bin, append(args[:len(args)-1], "--json")...).Output()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	var sum plan.Summary
	json.Unmarshal(out, &sum)
	checkOnce(t, dst, n)
	t.Logf("%d runs killed mid-way; final run copied %d, found %d present", kills, sum.Copied, sum.AlreadyPresent)
	if kills < 8 {
		t.Errorf("only %d runs were killed before finishing; the test did not test much", kills)
	}
}

// sampleMaildir is the absolute path of examples/sample-maildir, for
// configs written elsewhere (their relative paths are relative to them).
func sampleMaildir(t *testing.T) string {
	p, err := filepath.Abs("examples/sample-maildir")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPathsRelativeToFile runs a config naming its Maildirs and
// checkpoint relative to itself from another directory, as cron does.
func TestConfigPathsRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	makeMaildir(filepath.Join(dir, "mail"), 5)
	cfg := "summary_file: out/summary.json\njobs:\n  - name: rel\n    source: maildir:mail\n    destination: maildir:backup?layout=fs\n    checkpoint: state.ckpt\n"
	os.Mkdir(filepath.Join(dir, "out"), 0o700)
	p := filepath.Join(dir, "job.yaml")
	os.WriteFile(p, []byte(cfg), 0o600)
	if code, _, stderr := cli(t, "run", "--quiet", p); code != exitOK { // the tests run in the repository, not dir
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkOnce(t, filepath.Join(dir, "backup"), 5)
	for _, f := range []string{"state.ckpt", "out/summary.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not beside the config: %v", f, err)
		}
	}
	code, _, stderr := cli(t, "run", "--job", "nope", p)
	if code != exitUsage || !strings.Contains(stderr, `--job "nope": no job of that name`) || !strings.Contains(stderr, "hint: the jobs are: rel") {
		t.Errorf("--job nope: exit %d, %s", code, stderr)
	}
}

func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("examples/ has %d configs, want one per use", len(files))
	}
	files = append(files, "examples/kubernetes/batch.yaml")
	for _, f := range files {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// makeMaildir writes n messages in three folders; one in ten has no
// Message-ID, so it is keyed by content.
func makeMaildir(src string, n int) {
	for i := range n {
		folder := []string{"", ".A", ".B.C"}[i%3]
		os.MkdirAll(filepath.Join(src, folder, "cur"), 0o700)
		body := fmt.Sprintf("Message-ID: <%d@kill.test>\nSubject: %d\n\n%s\n", i, i, strings.Repeat("body ", i%200))
		if i%10 == 0 {
			body = fmt.Sprintf("Subject: no id %d\n\nbody\n", i)
		}
		os.WriteFile(filepath.Join(src, folder, "cur", fmt.Sprintf("%d.x:2,S", i)), []byte(body), 0o600)
	}
}

// checkOnce fails unless the Maildir at dst holds n distinct messages, each
// exactly once.
func checkOnce(t *testing.T, dst string, n int) {
	t.Helper()
	seen := map[string]int{}
	filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && filepath.Base(filepath.Dir(p)) == "cur" {
			b, _ := os.ReadFile(p)
			seen[string(b)]++
		}
		return err
	})
	if len(seen) != n {
		t.Fatalf("destination holds %d distinct messages, want %d", len(seen), n)
	}
	for body, c := range seen {
		if c != 1 {
			t.Fatalf("message held %d times: %.60q", c, body)
		}
	}
}

// Ctrl-C (SIGINT) stops cleanly with exit code 1 and a hint; the next run
// completes with every message once.
func TestInterruptAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	src, dst, ckpt := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "ckpt")
	const n = 3000
	makeMaildir(src, n)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "copy", "maildir:"+src, "maildir:"+dst, "--checkpoint", ckpt)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "run the same command again") {
		t.Fatalf("after SIGINT: %v, stderr %q", err, stderr.String())
	}
	if out, err := exec.Command(bin, "copy", "maildir:"+src, "maildir:"+dst, "--checkpoint", ckpt).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	checkOnce(t, dst, n)
}

func TestOAuth2TokenCmd(t *testing.T) {
	e, _ := endpoint.Parse("imaps://alice@imap.example.com")
	t.Setenv("MAILFERRY_SRC_PASSWORD", "not-used")
	cfg := EndpointConfig{OAuth2TokenCmd: "printf 'tok-123\\n'"}
	c, err := sinkimap.Config(e, endpointEnv(e, cfg, "src", newLogger(&RunSettings{}, io.Discard)))
	if err != nil || c.Token != "tok-123" || c.Password != "" {
		t.Fatalf("config %+v, %v; want the token and no password", c, err)
	}
	cfg = EndpointConfig{OAuth2TokenCmd: "echo oops >&2; exit 3"}
	_, err = sinkimap.Config(e, endpointEnv(e, cfg, "src", newLogger(&RunSettings{}, io.Discard)))
	if err == nil || !strings.Contains(err.Error(), "oauth2_token_cmd failed") {
		t.Fatalf("a failing token command: %v", err)
	}
	if _, err := parseConfig([]byte("jobs:\n  - name: a\n    source: {url: 'maildir:/x', oauth2_token_cmd: 'echo t'}\n    destination: maildir:/y\n")); err == nil {
		t.Fatal("a maildir with a token command was accepted")
	}
}

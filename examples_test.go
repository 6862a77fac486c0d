package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The examples run as written: the crontab line's command, with the
// paths it names pointed at a scratch directory, and the systemd units
// as systemd-analyze reads them.

func TestCrontabRunsAsWritten(t *testing.T) {
	b, err := os.ReadFile("examples/crontab")
	if err != nil {
		t.Fatal(err)
	}
	var cmd []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && !strings.HasPrefix(line, "#") && !strings.Contains(f[0], "=") {
			cmd = f[5:]
		}
	}
	if len(cmd) == 0 || cmd[0] != "/usr/local/bin/mailferry" {
		t.Fatalf("no mailferry line in examples/crontab: %q", cmd)
	}
	// The job file the comment says to copy to /etc/mailferry/, its
	// destination under the scratch directory.
	dir := t.TempDir()
	job, err := os.ReadFile("examples/backup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	job = []byte(strings.ReplaceAll(strings.ReplaceAll(string(job), "maildir:sample-maildir", "maildir:"+sampleMaildir(t)), "/tmp/mailferry-backup", filepath.Join(dir, "backup")))
	etc := filepath.Join(dir, "etc")
	os.Mkdir(etc, 0o700)
	os.WriteFile(filepath.Join(etc, "backup.yaml"), job, 0o600)
	metricsDir := filepath.Join(dir, "textfile_collector")
	os.Mkdir(metricsDir, 0o700)
	var args []string
	for _, a := range cmd[1:] {
		a = strings.Replace(a, "/etc/mailferry", etc, 1)
		a = strings.Replace(a, "/var/lib/node_exporter/textfile_collector", metricsDir, 1)
		args = append(args, a)
	}
	code, stdout, stderr := cli(t, args...)
	if code != exitOK || stdout != "" || stderr != "" {
		t.Fatalf("%v: exit %d, stdout %q, stderr %q (cron would mail any output)", args, code, stdout, stderr)
	}
	if m, err := os.ReadFile(filepath.Join(metricsDir, "mailferry.prom")); err != nil || !strings.Contains(string(m), `mailferry_last_run_exit_code{job="sample-backup"} 0`) {
		t.Errorf("metrics: %v\n%s", err, m)
	}
	checkOnce(t, filepath.Join(dir, "backup"), 7)
}

func TestSystemdUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing (apt-get install systemd; scripts/test.sh does), and CI=true forbids skipping")
		}
		t.Skip("systemd-analyze is missing: apt-get install systemd")
	}
	dir := t.TempDir()
	exe, _ := os.Executable() // any executable will do for ExecStart's check
	// The watch template is verified as one of its instances.
	for name, as := range map[string]string{"mailferry-backup.service": "", "mailferry-backup.timer": "", "mailferry-watch@.service": "mailferry-watch@alice.service"} {
		b, err := os.ReadFile(filepath.Join("examples/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if as == "" {
			as = name
		}
		os.WriteFile(filepath.Join(dir, as), []byte(strings.ReplaceAll(string(b), "/usr/local/bin/mailferry", exe)), 0o600)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no",
		filepath.Join(dir, "mailferry-backup.service"), filepath.Join(dir, "mailferry-backup.timer"),
		filepath.Join(dir, "mailferry-watch@alice.service")).CombinedOutput()
	// systemd-analyze exits 0 on values it ignores; any word from it is a
	// mistake in the unit.
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	b, _ := os.ReadFile("examples/systemd/mailferry-backup.service")
	if !strings.Contains(string(b), "SuccessExitStatus=4 5") {
		t.Error("a run stopped at the byte budget (5) or locked out (4) would mark the unit failed")
	}
}

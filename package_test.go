package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDeb builds the linux/amd64 release with scripts/package.sh
// (GoReleaser and nFPM) and checks the .deb: installed into a scratch
// root, it holds a binary that runs and reports its version, the man
// pages, the completions, the systemd units pointing at /usr/bin, and the
// examples. It installs GoReleaser from the module proxy the first time,
// which takes minutes, so it runs in CI (CI=true) or when asked
// (MAILFERRY_PACKAGE_TEST=1).
func TestPackageDeb(t *testing.T) {
	if os.Getenv("CI") != "true" && os.Getenv("MAILFERRY_PACKAGE_TEST") != "1" {
		t.Skip("builds the release packages: set MAILFERRY_PACKAGE_TEST=1 (CI runs it)")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatal("dpkg-deb is missing")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", "scripts/package.sh")
	cmd.Env = append(os.Environ(), "PACKAGE_OUT="+out, "PACKAGE_TARGET=linux/amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "mailferry_*_amd64.deb"))
	if len(debs) != 1 {
		entries, _ := os.ReadDir(out)
		t.Fatalf("want one amd64 .deb in %s, have %v", out, entries)
	}
	for _, pattern := range []string{"*.rpm", "*linux_amd64.tar.gz", "checksums.txt"} {
		if m, _ := filepath.Glob(filepath.Join(out, pattern)); len(m) == 0 {
			t.Errorf("no %s", pattern)
		}
	}
	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	for _, f := range []string{
		"usr/bin/mailferry",
		"usr/share/man/man1/mailferry.1.gz", "usr/share/man/man1/mailferry-copy.1.gz",
		"usr/share/bash-completion/completions/mailferry", "usr/share/zsh/vendor-completions/_mailferry",
		"usr/share/fish/vendor_completions.d/mailferry.fish",
		"usr/lib/systemd/system/mailferry-backup.service", "usr/lib/systemd/system/mailferry-backup.timer",
		"usr/lib/systemd/system/mailferry-watch@.service",
		"usr/share/doc/mailferry/examples/backup.yaml", "usr/share/doc/mailferry/README.md",
	} {
		if fi, err := os.Stat(filepath.Join(root, f)); err != nil || fi.Size() == 0 {
			t.Errorf("package: %s missing or empty (%v)", f, err)
		}
	}
	b, err := exec.Command(filepath.Join(root, "usr/bin/mailferry"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), "mailferry ") || !strings.Contains(string(b), "built ") {
		t.Errorf("mailferry version: %v: %s", err, b)
	}
	// The binary the packages and the container image carry runs without
	// a C library or loader: no ELF interpreter.
	bin, err := elf.Open(filepath.Join(root, "usr/bin/mailferry"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the packaged binary is dynamically linked")
		}
	}
	bin.Close()
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/mailferry-backup.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/mailferry ") {
		t.Errorf("the packaged unit does not run /usr/bin/mailferry:\n%s", unit)
	}
}

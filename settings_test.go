package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// structural keys are a job's shape, not settings: they have no flag.
var structural = []string{"name", "source", "destination"}

// TestEveryKeyHasAFlag checks the single declaration: every leaf of Job
// and RunSettings with a YAML key has a flag and every flag a key (or a
// stated reason, yaml:"-"), and no two settings share a flag.
func TestEveryKeyHasAFlag(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Job](), reflect.TypeFor[RunSettings]()} {
		var walk func(t reflect.Type, prefix string)
		walk = func(rt reflect.Type, prefix string) {
			for i := range rt.NumField() {
				f := rt.Field(i)
				if !f.IsExported() {
					continue
				}
				key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				path := prefix + key
				if slices.Contains(structural, path) {
					continue
				}
				if f.Type.Kind() == reflect.Struct && f.Tag.Get("flag") == "" {
					walk(f.Type, path+".")
					continue
				}
				switch {
				case key == "":
					t.Errorf("%s.%s: no yaml key", rt.Name(), f.Name)
				case f.Tag.Get("flag") == "":
					t.Errorf("%s (%s.%s): a file key without a flag", path, rt.Name(), f.Name)
				case f.Tag.Get("help") == "":
					t.Errorf("%s: flag --%s without help", path, f.Tag.Get("flag"))
				}
			}
		}
		walk(typ, "")
	}
	seen := map[string]string{}
	for _, s := range append(settingsOf(reflect.TypeFor[Job]()), settingsOf(reflect.TypeFor[RunSettings]())...) {
		for _, name := range []string{s.flag, s.alias} {
			if name == "" {
				continue
			}
			if other, dup := seen[name]; dup {
				t.Errorf("--%s declared by both %s and %s", name, other, s.path)
			}
			seen[name] = s.path
		}
	}
	if len(seen) < 30 {
		t.Fatalf("only %d flags found: the walk is broken", len(seen))
	}
}

// TestCommandFlagsAreDeclared checks that every flag a command offers
// comes from the declaration (and so has a file key and help).
func TestCommandFlagsAreDeclared(t *testing.T) {
	code := 0
	root := newCommand(t.Context(), nil, nil, &code)
	declared := map[string]bool{"help": true}
	for _, s := range append(settingsOf(reflect.TypeFor[Job]()), settingsOf(reflect.TypeFor[RunSettings]())...) {
		declared[s.flag] = true
		if s.alias != "" {
			declared[s.alias] = true
		}
	}
	counts := map[string]int{}
	for _, name := range []string{"copy", "plan", "run", "verify"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("no command %s: %v", name, err)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			counts[name]++
			if !declared[f.Name] {
				t.Errorf("%s --%s is not a declared setting", name, f.Name)
			}
		})
	}
	// verify takes no pacing or deletion flags; plan writes no reports.
	if counts["verify"] >= counts["plan"] || counts["plan"] >= counts["copy"] || counts["copy"] >= counts["run"] {
		t.Errorf("flag counts per command look wrong: %v", counts)
	}
}

// TestFlagsOverFile: a flag replaces the file's value, an append list
// extends it, and a flag not given leaves the file's value alone.
func TestFlagsOverFile(t *testing.T) {
	in := &invocation{}
	c := &cobra.Command{Use: "run"}
	bindFlags(c, &in.job, "run")
	in.flags = c.Flags()
	if err := c.Flags().Parse([]string{"--exclude", "Spam", "--folder", "INBOX", "--workers", "5", "--map", "A=B"}); err != nil {
		t.Fatal(err)
	}
	file := Job{
		Source:      EndpointConfig{URL: "maildir:/a"},
		Destination: EndpointConfig{URL: "maildir:/b"},
		Workers:     2,
		Dedup:       "content",
		Folders:     FolderConfig{Include: []string{"Archive*"}, Exclude: []string{"Trash"}},
	}
	j, err := in.apply(file)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		what      string
		got, want any
	}{
		{"workers (flag replaces)", j.Workers, 5},
		{"dedup (left alone)", j.Dedup, "content"},
		{"include (alias --folder replaces)", j.Folders.Include, []string{"INBOX"}},
		{"exclude (appends)", j.Folders.Exclude, []string{"Trash", "Spam"}},
		{"map", j.Folders.Map, map[string]string{"A": "B"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.what, tt.got, tt.want)
		}
	}
}

func TestSettingsChecked(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"copy", "--dedup", "bogus", "maildir:/a", "maildir:/b"}, "bogus"},
		{[]string{"copy", "--progress", "sometimes", "maildir:/a", "maildir:/b"}, `progress (--progress): "sometimes" is not one of auto, always, never`},
		{[]string{"copy", "--log-format", "xml", "maildir:/a", "maildir:/b"}, `log_format (--log-format): "xml"`},
		{[]string{"copy", "--workers", "0", "maildir:/a", "maildir:/b"}, "workers (--workers): 0 is less than 1"},
		{[]string{"run", "--parallel", "0", "examples/backup.yaml"}, "parallel (--parallel): 0 is less than 1"},
		{[]string{"copy", "--quiet", "--verbose", "maildir:/a", "maildir:/b"}, "ask for opposite things"},
		{[]string{"copy", "--dry-run", "maildir:/a", "maildir:/b"}, `hint: "mailferry plan SRC DST" shows what copy would do`},
		{[]string{"copy", "--bogus", "maildir:/a", "maildir:/b"}, `hint: run "mailferry help copy" for the flags it takes`},
		{[]string{"copy", "--max-delete-fraction", "2", "maildir:/a", "maildir:/b"}, "max_delete_fraction"},
		{[]string{"verify", "--workers", "3", "maildir:/a", "maildir:/b"}, "unknown flag: --workers"},
		{[]string{"verify", "--delete-after-copy", "maildir:/a", "maildir:/b"}, "flags about writing mean nothing to it"},
		{[]string{"copy", "--map", "noequals", "maildir:/a", "maildir:/b"}, "want SOURCE=DESTINATION"},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestCompletion checks the shell scripts and that the completion a
// shell asks for offers a setting's declared values.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := cli(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "mailferry") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, code, len(out), stderr)
		}
	}
	code, out, _ := cli(t, cobra.ShellCompRequestCmd, "copy", "--dedup", "")
	if code != 0 || !strings.HasPrefix(out, "message-id\ncontent\nnone\n") {
		t.Errorf("completing --dedup: exit %d, %q", code, out)
	}
	_, out, _ = cli(t, cobra.ShellCompRequestCmd, "copy", "--")
	for _, want := range []string{"--max-delete-fraction", "--folder", "--summary-file"} {
		if !strings.Contains(out, want) {
			t.Errorf("completing copy flags: %s missing from %q", want, out)
		}
	}
	if strings.Contains(out, "--jobs-from") {
		t.Errorf("copy offers run's --jobs-from")
	}
}

func TestVersion(t *testing.T) {
	defer func(v, c, d string) { buildVersion, buildCommit, buildDate = v, c, d }(buildVersion, buildCommit, buildDate)
	buildVersion, buildCommit, buildDate = "1.2.3", "abc1234", "2026-12-01T00:00:00Z"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := cli(t, args...)
		if want := "mailferry 1.2.3 (commit abc1234, built 2026-12-01T00:00:00Z)\n"; code != 0 || out != want {
			t.Errorf("%v: exit %d, %q; want %q", args, code, out, want)
		}
	}
}

// TestHelpOnStdout: help is read with a pager, so it goes to stdout, for
// every command and every way of asking.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "copy"}, {"copy", "--help"}, {"help", "run"}, {"help", "verify"}, {"help", "oauth"}, {"oauth", "login", "--help"}} {
		code, out, stderr := cli(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || stderr != "" {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, len(out), stderr)
		}
	}
	_, out, _ := cli(t, "help")
	for _, want := range []string{"ca_file", "MAILFERRY_SRC_PASSWORD", "oauth login", "completion", "layout"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	_, out, _ = cli(t, "help", "verify")
	if strings.Contains(out, "--workers") || strings.Contains(out, "--delete-after-copy") || !strings.Contains(out, "--deep") {
		t.Errorf("help verify lists the wrong flags:\n%s", out)
	}
}

// TestManPages: the manual pages come from the same declaration as the
// help: every command has one, with its flags.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1764547200") // 2025-12-01
	if code, _, stderr := cli(t, "man", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for page, want := range map[string]string{
		"mailferry.1":        "MAILFERRY",
		"mailferry-copy.1":   `\fB--daily-byte-budget\fP`,
		"mailferry-verify.1": `\fB--deep\fP`,
		"mailferry-run.1":    `\fB--shard\fP`,
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !strings.Contains(string(b), want) || !strings.Contains(string(b), `"Dec 2025"`) {
			t.Errorf("%s: %v, lacks %q or the fixed date", page, err, want)
		}
	}
}

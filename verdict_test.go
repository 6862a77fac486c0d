package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedFolderCounted: a folder the destination refuses is counted in
// the verdict and the summary, not only listed among the errors, so the
// verdict agrees with exit 3.
func TestFailedFolderCounted(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"cur", "new", "tmp", "v1.2/cur", "v1.2/new", "v1.2/tmp"} {
		os.MkdirAll(filepath.Join(src, d), 0o700)
	}
	os.WriteFile(filepath.Join(src, "cur", "1.a:2,S"), []byte("Message-ID: <a@x>\r\n\r\na\r\n"), 0o600)
	os.WriteFile(filepath.Join(src, "v1.2", "cur", "1.b:2,S"), []byte("Message-ID: <b@x>\r\n\r\nb\r\n"), 0o600)
	code, out, stderr := cli(t, "copy", "--json", "maildir:"+src+"?layout=fs", "maildir:"+filepath.Join(dir, "dst"))
	if code != exitIncomplete {
		t.Fatalf("exit %d, want 3: %s", code, stderr)
	}
	if !strings.Contains(stderr, "1 copied, 0 duplicates skipped, 0 failed, 1 folder failed") {
		t.Errorf("the verdict does not count the folder:\n%s", stderr)
	}
	var sum struct {
		FailedFolders int `json:"failed_folders"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.FailedFolders != 1 {
		t.Errorf("failed_folders %d (%v), want 1", sum.FailedFolders, err)
	}

	mbox := filepath.Join(dir, "Sent.2024")
	os.WriteFile(mbox, []byte("From a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <m@x>\n\nbody\n"), 0o600)
	code, _, stderr = cli(t, "copy", "mbox:"+mbox, "maildir:"+filepath.Join(dir, "dst2"))
	if code != exitIncomplete || !strings.Contains(stderr, "hint: folder \"Sent.2024\" is named after its mbox file") || !strings.Contains(stderr, "?folder=NAME") {
		t.Errorf("mbox file with a refused name: exit %d, %s", code, stderr)
	}
	code, _, stderr = cli(t, "copy", "mbox:"+mbox+"?folder=Sent", "maildir:"+filepath.Join(dir, "dst2"))
	if code != exitOK {
		t.Errorf("with ?folder=Sent: exit %d, %s", code, stderr)
	}
}

// TestPlanSaysWhyMapped: plan's table says why a folder lands under
// another name.
func TestPlanSaysWhyMapped(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := cli(t, "plan", "maildir:examples/sample-maildir", "maildir:"+filepath.Join(dir, "d"), "--map", "Sent=Gesendet", "--checkpoint", filepath.Join(dir, "c"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Gesendet") && !strings.Contains(line, "(folders.map)") {
			t.Errorf("the mapped folder's line does not say why: %q", line)
		}
	}
	if !strings.Contains(out, "Gesendet") {
		t.Errorf("no mapped folder in the plan:\n%s", out)
	}
}

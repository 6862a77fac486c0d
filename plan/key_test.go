package plan

import (
	"strings"
	"testing"
)

func TestContentKeyFoldsLineEndings(t *testing.T) {
	a, _ := ContentKey(strings.NewReader("a\r\nb\r\n"))
	b, _ := ContentKey(strings.NewReader("a\nb\n"))
	c, _ := ContentKey(strings.NewReader("a\nb\nc"))
	if a != b || a == c || !strings.HasPrefix(a, "c:") {
		t.Fatalf("keys: %q %q %q", a, b, c)
	}
}

package source

import (
	"slices"
	"testing"
)

func TestNormalizeFlags(t *testing.T) {
	got := NormalizeFlags([]string{`\seen`, "$Label1", `\Recent`, `\Seen`, " ", "work", `\FLAGGED`})
	want := []string{"$Label1", `\Flagged`, `\Seen`, "work"}
	if !slices.Equal(got, want) {
		t.Fatalf("NormalizeFlags = %q, want %q", got, want)
	}
}

func TestSameFlags(t *testing.T) {
	tests := []struct {
		a, b []string
		same bool
	}{
		{[]string{`\Seen`, "Work"}, []string{"work", `\seen`}, true}, // keyword case sorts differently around '\'
		{[]string{`\Seen`, `\Recent`}, []string{`\Seen`}, true},
		{nil, []string{}, true},
		{[]string{`\Seen`}, []string{`\Seen`, "x"}, false},
		{[]string{"a"}, []string{"b"}, false},
	}
	for _, tt := range tests {
		if got := SameFlags(tt.a, tt.b); got != tt.same {
			t.Errorf("SameFlags(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

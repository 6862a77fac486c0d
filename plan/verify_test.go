package plan_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/source"
)

func TestVerify(t *testing.T) {
	a := "Message-ID: <a@x>\r\n\r\na\r\n"
	b := "Message-ID: <b@x>\r\n\r\nb\r\n"
	c := "Subject: no id\r\n\r\nc\r\n"
	tests := []struct {
		name                               string
		src, dst                           []msg
		deep                               bool
		present, missing, differing, extra int
	}{
		{"complete", []msg{{"INBOX", a}, {"S", b}, {"INBOX", c}}, []msg{{"INBOX", a}, {"S", b}, {"INBOX", c}}, true, 3, 0, 0, 0},
		{"missing", []msg{{"INBOX", a}, {"INBOX", b}}, []msg{{"INBOX", a}}, false, 1, 1, 0, 0},
		{"folder missing", []msg{{"S", a}}, nil, false, 0, 1, 0, 0},
		{"differs, deep", []msg{{"INBOX", a}}, []msg{{"INBOX", "Message-ID: <a@x>\r\n\r\nALTERED\r\n"}}, true, 0, 0, 1, 0},
		{"differs, shallow", []msg{{"INBOX", a}}, []msg{{"INBOX", "Message-ID: <a@x>\r\n\r\nALTERED\r\n"}}, false, 1, 0, 0, 0},
		{"line endings aside", []msg{{"INBOX", a}}, []msg{{"INBOX", strings.ReplaceAll(a, "\r\n", "\n")}}, true, 1, 0, 0, 0},
		{"extra copy", []msg{{"INBOX", a}}, []msg{{"INBOX", a}, {"INBOX", a}}, true, 1, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := memStore(t, tt.src...), memStore(t, tt.dst...)
			puts := dst.Puts
			sum, err := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{Deep: tt.deep})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Present != tt.present || sum.Missing != tt.missing || sum.Differing != tt.differing || sum.Extra != tt.extra {
				t.Fatalf("present %d missing %d differing %d extra %d; want %d %d %d %d", sum.Present, sum.Missing, sum.Differing, sum.Extra, tt.present, tt.missing, tt.differing, tt.extra)
			}
			if sum.Complete() != (tt.missing+tt.differing == 0) {
				t.Fatalf("Complete() = %v", sum.Complete())
			}
			if tt.missing+tt.differing > 0 && len(sum.Errors) != tt.missing+tt.differing {
				t.Fatalf("errors %+v do not name each message", sum.Errors)
			}
			if dst.Puts != puts {
				t.Fatal("verify wrote to the destination")
			}
		})
	}
}

// Verify agrees with copy: after a copy, verify finds everything.
func TestVerifyAfterCopy(t *testing.T) {
	var msgs []msg
	for i := range 30 {
		msgs = append(msgs, msg{[]string{"INBOX", "A", "B/C"}[i%3], "Message-ID: <" + strings.Repeat("v", i+1) + "@x>\r\n\r\nbody\r\n"})
	}
	msgs = append(msgs, msg{"INBOX", "Subject: no id\r\n\r\nx\r\n"})
	src := memStore(t, msgs...)
	dst := memory.New()
	run(t, src, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	sum, err := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{Deep: true})
	if err != nil || !sum.Complete() || sum.Present != len(msgs) {
		t.Fatalf("%+v, %v", sum, err)
	}
	var first source.Message
	dst.List(context.Background(), "A", func(m source.Message) error { first = m; return nil })
	dst.Remove("A", first.ID)
	if sum, _ := plan.Verify(context.Background(), src, dst, plan.VerifyOptions{}); sum.Complete() || sum.Missing != 1 {
		t.Fatalf("after removing one: %+v", sum)
	}
}

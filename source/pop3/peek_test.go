package pop3

import (
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/sink/memory"
)

// A UIDL given to several messages loses none of them: they are told apart
// by content, copied, and a move deletes exactly what was copied.
func TestFakeDuplicateUIDLs(t *testing.T) {
	for _, move := range []bool{false, true} {
		f := &fakePOP3{msgs: msgs(3)}
		f.msgs[0].uidl, f.msgs[1].uidl = "same", "same"
		f.msgs = append(f.msgs, fakeMsg{uidl: "same", body: f.msgs[0].body}) // an identical twin
		f.start(t)
		dst := memory.New()
		ckpt := filepath.Join(t.TempDir(), "ckpt")
		sum, err := copyRun(t, f, dst, ckpt, plan.Options{Dedup: plan.DedupNone, DeleteAfterCopy: move})
		if err != nil || sum.Copied != 4 || dst.Count("INBOX") != 4 {
			t.Fatalf("move=%v: copied %d, destination %d: %v (%+v)", move, sum.Copied, dst.Count("INBOX"), err, sum.Errors)
		}
		got := bodies(dst)
		if got[f.msgs[0].body] != 2 || got[f.msgs[1].body] != 1 || got[f.msgs[2].body] != 1 {
			t.Fatalf("move=%v: destination %v", move, got)
		}
		left := 0
		for _, m := range f.msgs {
			if !m.deleted {
				left++
			}
		}
		if want := map[bool]int{false: 4, true: 0}[move]; left != want {
			t.Fatalf("move=%v: %d left at the server, want %d", move, left, want)
		}
		if !move {
			if again, err := copyRun(t, f, dst, ckpt, plan.Options{Dedup: plan.DedupNone}); err != nil || again.Copied != 0 {
				t.Fatalf("re-run copied %d: %v", again.Copied, err)
			}
		}
	}
}

// A server whose TOP stops at the header (it ignores the line count) is
// read with RETR instead, once that is seen: every message arrives whole.
func TestFakeTOPShortFallsBackToRETR(t *testing.T) {
	f := &fakePOP3{msgs: msgs(4), topHeadersOnly: true}
	f.start(t)
	dst := memory.New()
	sum, err := copyRun(t, f, dst, filepath.Join(t.TempDir(), "ckpt"), plan.Options{})
	if err != nil || sum.Copied != 4 {
		t.Fatalf("%+v, %v", sum, err)
	}
	got := bodies(dst)
	for _, m := range f.msgs {
		if got[m.body] != 1 {
			t.Errorf("%s arrived %d times whole", m.uidl, got[m.body])
		}
	}
	if f.retrs != 4 || f.peeks != 1 {
		t.Errorf("%d RETRs after %d whole TOPs; want 4 after 1", f.retrs, f.peeks)
	}
}

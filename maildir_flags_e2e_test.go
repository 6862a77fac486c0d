package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/sourcetest"
)

// A Maildir backup restored by pointing Dovecot at it shows the flags of
// the account it was taken from: every system flag, $Forwarded (which
// Dovecot does not read from "P"), $MDNSent, $Junk/$NotJunk and keywords
// up to the 26 letters a folder has. A message with more keywords than
// that is still copied, and the one left out is named in the summary.
func TestMaildirBackupServedByDovecotKeepsFlags(t *testing.T) {
	srv, from, restored := migrationPair(t)
	var fx []sourcetest.Fixture
	system := [][]string{{`\Seen`}, {`\Answered`, `\Seen`}, {`\Flagged`}, {`\Deleted`, `\Seen`}, {`\Draft`}, {source.FlagForwarded, `\Seen`},
		{"$MDNSent", source.FlagForwarded}, {"$Junk"}, {"$NotJunk", `\Answered`, `\Flagged`}}
	for i, flags := range system {
		fx = append(fx, fixture("INBOX", i, flags))
	}
	// 26 keywords in one folder: the four above and 22 more.
	var all []string
	for i := range 22 {
		all = append(all, fmt.Sprintf("$Label%02d", i))
	}
	all = append(all, source.FlagForwarded, "$MDNSent", "$Junk", "$NotJunk")
	for i := range 13 {
		fx = append(fx, fixture("Full", i, all[2*i:2*i+2]))
	}
	fx = append(fx, fixture("Full", 13, all))
	over := append(slices.Clone(all), "$OneTooMany")
	fx = append(fx, fixture("Over", 0, over))
	sinktest.Put(t, imapStore(t, srv, from), fx)

	sum := copyJSON(t, "copy", imapURL(srv, from), "maildir:"+srv.Maildir(restored))
	if sum.Copied != len(fx) || sum.Failed != 0 {
		t.Fatalf("copied %d of %d, failed %d: %+v", sum.Copied, len(fx), sum.Failed, sum.Errors)
	}
	if len(sum.Warnings) != 1 || sum.Warnings[0].Folder != "Over" || !strings.Contains(sum.Warnings[0].Error, "$") || !strings.Contains(sum.Warnings[0].Message, "flags.test") {
		t.Fatalf("warnings: %+v", sum.Warnings)
	}
	srv.Own(t, restored)

	flagsByID := func(user string) map[string][]string {
		out := map[string][]string{}
		st := imapStore(t, srv, user)
		for _, folder := range []string{"INBOX", "Full", "Over"} {
			err := st.List(context.Background(), folder, func(m source.Message) error {
				out[folder+" "+m.MessageID] = source.NormalizeFlags(m.Flags)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	want, got := flagsByID(from), flagsByID(restored)
	if len(got) != len(fx) {
		t.Fatalf("Dovecot serves %d messages of the backup, want %d", len(got), len(fx))
	}
	for id, w := range want {
		g := got[id]
		if strings.HasPrefix(id, "Over ") {
			// One keyword found no letter: the one the warning names.
			missing := slices.DeleteFunc(slices.Clone(w), func(f string) bool { return slices.Contains(g, f) })
			if len(missing) != 1 || len(g) != len(w)-1 || !strings.Contains(sum.Warnings[0].Error, missing[0]) {
				t.Errorf("%s: Dovecot shows %v, the source has %v; warning %q", id, g, w, sum.Warnings[0].Error)
			}
			continue
		}
		if !source.SameFlags(g, w) {
			t.Errorf("%s: Dovecot shows %v, the source has %v", id, g, w)
		}
	}
	// mailferry reads the same backup back with each flag once.
	code, out, stderr := cli(t, "verify", imapURL(srv, from), "maildir:"+srv.Maildir(restored), "--folder", "INBOX")
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
}

func fixture(folder string, i int, flags []string) sourcetest.Fixture {
	return sourcetest.Fixture{Name: fmt.Sprint(folder, i), Folder: folder, Flags: flags, Date: time.Date(2024, 3, 1, 0, 0, i, 0, time.UTC),
		Content: fmt.Appendf(nil, "Message-ID: <%s%d@flags.test>\r\nSubject: %v\r\n\r\nflags\r\n", folder, i, flags)}
}

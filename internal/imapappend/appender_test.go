package imapappend

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/netx"
	"github.com/mailferry/mailferry/internal/spool"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

// The appender's behaviour against servers (batches, refusals, lost
// connections, Dovecot) is tested through the sink that uses it, in
// sink/imap/appender_test.go.

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"M1 OK [APPENDUID 9 3] done\r\n", "M1 OK [APPENDUID 9 3] done"},
		{"* 3 FETCH (FLAGS (\\Seen) X {5}\r\nab\r\nc Y)\r\nM2 OK done\r\n", "* 3 FETCH (FLAGS (\\Seen) X  Y)"},
		{"M3 NO bare LF\n", "M3 NO bare LF"},
	} {
		got, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)))
		if err != nil || got != tt.want {
			t.Errorf("readResponse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTagged(t *testing.T) {
	for _, tt := range []struct {
		in       string
		n        int
		uv       uint32
		uids     []imap.UID
		typ      imap.StatusResponseType
		code     imap.ResponseCode
		bad      bool
		errorful bool
	}{
		{in: "OK [APPENDUID 38505 3955] APPEND completed", n: 1, uv: 38505, uids: []imap.UID{3955}},
		{in: "OK [APPENDUID 38505 3955:3957] APPEND completed", n: 3, uv: 38505, uids: []imap.UID{3955, 3956, 3957}},
		{in: "OK [APPENDUID 7 9:8,12] either way round", n: 3, uv: 7, uids: []imap.UID{8, 9, 12}},
		{in: "OK [APPENDUID 7 1:100000] more than sent", n: 3, uv: 7},
		{in: "OK [APPENDUID 7 x] garbage", n: 1, uv: 7},
		{in: "OK done", n: 1},
		{in: "ok [appenduid 1 2] lower case", n: 1, uv: 1, uids: []imap.UID{2}},
		{in: "NO [TRYCREATE] no such mailbox", n: 1, typ: imap.StatusResponseTypeNo, code: imap.ResponseCodeTryCreate, errorful: true},
		{in: "NO [OVERQUOTA] quota", n: 1, typ: imap.StatusResponseTypeNo, code: imap.ResponseCodeOverQuota, errorful: true},
		{in: "BAD Suggested Backoff Time: 30 milliseconds", n: 1, typ: imap.StatusResponseTypeBad, bad: true, errorful: true},
		{in: "PREAUTH what", n: 1, bad: true, errorful: true},
	} {
		ans, bad := parseTagged(tt.in, tt.n)
		var ie *imap.Error
		if ans.uidValidity != tt.uv || !slices.Equal(ans.uids, tt.uids) || bad != tt.bad || (ans.err != nil) != tt.errorful ||
			(tt.typ != "" && (!errors.As(ans.err, &ie) || ie.Type != tt.typ || ie.Code != tt.code)) {
			t.Errorf("parseTagged(%q, %d) = %+v, bad %v", tt.in, tt.n, ans, bad)
		}
	}
}

// A caller that gives up (an interrupted run) while its message is being
// written does not return, and so does not close its spool, until the
// writer is done with it; one still queued is taken off the queue.
func TestAppenderCancelWaitsForWriter(t *testing.T) {
	ours, theirs := net.Pipe() // writes block until the other end reads
	defer theirs.Close()
	a := New("INBOX", &srcimap.Stream{Conn: ours, DC: netx.NewDeadlineConn(ours, 5*time.Second), Caps: imap.CapSet{imap.CapMultiAppend: {}}})
	defer a.Close()
	body := "Subject: x\r\n\r\n" + strings.Repeat("y", 100<<10) + "\r\n"
	sp := &spool.Spool{}
	sp.Write([]byte(body))
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		_, err := a.Append(ctx, nil, time.Time{}, sp)
		returned <- err
	}()
	// The writer has begun the command (it blocks: nobody reads yet).
	head := make([]byte, 10)
	if _, err := io.ReadFull(theirs, head); err != nil || string(head) != "M1 APPEND " {
		t.Fatalf("read %q, %v", head, err)
	}
	cancel()
	select {
	case err := <-returned:
		t.Fatalf("append returned (%v) while its spool was still being written", err)
	case <-time.After(100 * time.Millisecond):
	}
	go io.Copy(io.Discard, theirs) // let the writer finish
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("append = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("append did not return once the writer was done")
	}
	sp.Close()
	// Queued behind a full pipeline and cancelled: off the queue at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := a.Append(ctx2, nil, time.Time{}, sp); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context = %v", err)
	}
}

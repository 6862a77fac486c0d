package maildir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

// benchMessage is a 20 KB message, CRLF, as an IMAP source yields it.
var benchMessage = []byte("From: a@example.com\r\nMessage-ID: <bench@example.com>\r\nSubject: bench\r\n\r\n" + strings.Repeat("a line of a message body, 40 bytes long\r\n", 500))

// BenchmarkPut is one crash-safe delivery: tmp/, CRLF to LF, fsync, mtime,
// rename into cur/, the shared cur/ fsync. Compare BenchmarkBaselineDelivery,
// the same file work done by hand, in the same run:
//
//	go test -run - -bench . ./sink/maildir
func BenchmarkPut(b *testing.B) {
	s, err := New(b.TempDir(), srcmaildir.LayoutMaildirPP, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := source.Message{Size: int64(len(benchMessage)), Flags: []string{`\Seen`}, Date: time.Now()}
	b.SetBytes(int64(len(benchMessage)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Put(context.Background(), "INBOX", m, bytes.NewReader(benchMessage)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineDelivery: write, fsync and rename a file and fsync the
// directory, nothing else: the floor the disk sets for a safe delivery.
func BenchmarkBaselineDelivery(b *testing.B) {
	dir, lf := baselineSetup(b)
	for i := range b.N {
		tmp := filepath.Join(dir, "tmp", fmt.Sprint(i))
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(lf)
		f.Sync()
		f.Close()
		os.Rename(tmp, filepath.Join(dir, "cur", fmt.Sprint(i)+":2,S"))
		d, _ := os.Open(filepath.Join(dir, "cur"))
		d.Sync()
		d.Close()
	}
}

// BenchmarkBaselineBatchSyncfs is the batched alternative the README names
// as the next step for Maildir speed: 16 files written, one syncfs(2) for
// all, then 16 renames and one directory fsync. Every message is still
// durable before it becomes visible.
func BenchmarkBaselineBatchSyncfs(b *testing.B) {
	dir, lf := baselineSetup(b)
	const batch = 16
	for i := 0; i < b.N; i += batch {
		var names []string
		for k := i; k < min(i+batch, b.N); k++ {
			tmp := filepath.Join(dir, "tmp", fmt.Sprint(k))
			os.WriteFile(tmp, lf, 0o600)
			names = append(names, tmp)
		}
		d, _ := os.Open(filepath.Join(dir, "cur"))
		unix.Syncfs(int(d.Fd()))
		for _, tmp := range names {
			os.Rename(tmp, filepath.Join(dir, "cur", filepath.Base(tmp)+":2,S"))
		}
		d.Sync()
		d.Close()
	}
}

// baselineSetup makes a bare tmp/ and cur/ and the message with LF line
// ends, for the baselines, and starts the timer.
func baselineSetup(b *testing.B) (dir string, lf []byte) {
	dir = b.TempDir()
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
	os.MkdirAll(filepath.Join(dir, "cur"), 0o700)
	lf = bytes.ReplaceAll(benchMessage, []byte("\r\n"), []byte("\n"))
	b.SetBytes(int64(len(benchMessage)))
	b.ResetTimer()
	return dir, lf
}

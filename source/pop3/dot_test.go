package pop3

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The cases of library audit §7: what go-pop3 v1.0.0 gets wrong.
func TestDotReader(t *testing.T) {
	long := strings.Repeat("a", 5000)
	edge := strings.Repeat("b", 4096) // a fragment boundary right before "."
	tests := []struct{ wire, want string }{
		{"..hello\r\n.\r\n", ".hello\r\n"},
		{"a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"}, // a line that is just "."
		{"...two\r\n.\r\n", "..two\r\n"},
		{long + "\r\n.\r\n", long + "\r\n"},
		{edge + ".after\r\n.\r\n", edge + ".after\r\n"},
		{"8bit \xff\xfe\x00 bytes\r\nlone\rcr\r\n.\r\n", "8bit \xff\xfe\x00 bytes\r\nlone\rcr\r\n"},
		{".\r\n", ""},
		{"no final newline\r\n.\r\n", "no final newline\r\n"},
	}
	for _, tt := range tests {
		for _, size := range []int{16, 4096, 64 << 10} {
			br := bufio.NewReaderSize(strings.NewReader(tt.wire+"+OK next response\r\n"), size)
			got, err := io.ReadAll(newDotReader(br))
			if err != nil || string(got) != tt.want {
				t.Errorf("buffer %d: %.40q: got %.40q (%d bytes), %v; want %d bytes", size, tt.wire, got, len(got), err, len(tt.want))
				continue
			}
			rest, _ := br.ReadString('\n')
			if rest != "+OK next response\r\n" {
				t.Errorf("buffer %d: %.40q: out of step after the body: %q", size, tt.wire, rest)
			}
		}
	}
}

func TestDotReaderCutShort(t *testing.T) {
	_, err := io.ReadAll(newDotReader(bufio.NewReader(strings.NewReader("Subject: x\r\n\r\nhalf a bo"))))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func FuzzDotReader(f *testing.F) {
	f.Add([]byte("..x\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		io.ReadAll(newDotReader(bufio.NewReaderSize(strings.NewReader(string(b)), 16))) // must not panic
	})
}

func TestTrailerReader(t *testing.T) {
	for _, tt := range []struct {
		wire     string
		listSize int64
		want     string
	}{
		{"Subject: x\r\n\r\nabc\r\n", 17, "Subject: x\r\n\r\nabc"},     // added by the server
		{"Subject: x\r\n\r\nabc\r\n", 19, "Subject: x\r\n\r\nabc\r\n"}, // the message's own
		{"\r\n", 0, ""}, // a 0-byte message
		{"Subject: x\r\n\r\nabc\r\n", -1, "Subject: x\r\n\r\nabc\r\n"}, // LIST unknown
		{"Subject: x\r\n\r\nabc\r\n", 25, "Subject: x\r\n\r\nabc\r\n"}, // LIST off: keep
		{strings.Repeat("y", 100000) + "\r\n", 100000, strings.Repeat("y", 100000)},
	} {
		for _, chunk := range []int{1, 7, 1 << 16} {
			r := &trailerReader{r: iotest.OneByteReader(strings.NewReader(tt.wire)), listSize: tt.listSize}
			got, err := io.ReadAll(&chunkReader{r, chunk})
			if err != nil || string(got) != tt.want {
				t.Errorf("chunk %d, list %d, %.30q: got %d bytes %v, want %d", chunk, tt.listSize, tt.wire, len(got), err, len(tt.want))
			}
		}
	}
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

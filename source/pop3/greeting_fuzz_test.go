package pop3

import (
	"bufio"
	"bytes"
	"net"
	"testing"
)

// sink is a connection that takes whatever is written to it.
type sink struct{ net.Conn }

func (sink) Write(p []byte) (int, error) { return len(p), nil }

// FuzzGreetingCapa feeds the greeting and CAPA readers whatever a server
// might send before login: they must not panic, or keep more than their
// bounds.
func FuzzGreetingCapa(f *testing.F) {
	for _, seed := range []string{
		"+OK ready <1.2@host>\r\n+OK\r\nUSER\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\n.\r\n",
		"+OK\r\n-ERR no\r\n",
		"+OK hi\n+OK\n..dotted\n.\n",
		"-ERR go away\r\n",
		"+OK\r\n+OK\r\nUSER",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 64<<10)
		line, err := readLine(br)
		if err != nil {
			return
		}
		if len(line) > maxLine {
			t.Fatalf("greeting of %d bytes kept", len(line))
		}
		caps, err := capa(sink{}, br)
		if err == nil && len(caps) > maxCapa {
			t.Fatalf("%d capabilities from at most %d bytes", len(caps), maxCapa)
		}
	})
}

package imapappend

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzAppendResponse feeds the MULTIAPPEND answer reader whatever a server
// might send: it must not panic, keep more than its bound of a line, or
// take more UIDs from APPENDUID than messages were sent.
func FuzzAppendResponse(f *testing.F) {
	for _, seed := range []string{
		"A1 OK [APPENDUID 7 5:7] done\r\n",
		"* 3 EXISTS\r\nA1 OK [APPENDUID 7 9,5:6] done\r\n",
		"* 1 FETCH (FLAGS (\\Seen) X {5}\r\nabcde)\r\nA1 NO [OVERQUOTA] full\r\n",
		"A1 BAD {99999999999}\r\n",
		"A1 OK [APPENDUID 4294967295 1:4294967295] x\r\n",
		"+ go on\r\nA1 OK [APPENDUID 1 0] x\r\n",
	} {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		n = 1 + (n&0xff)%16
		br := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
		for range 64 {
			line, err := readResponse(br)
			if err != nil {
				return
			}
			if len(line) > 64<<10 {
				t.Fatalf("kept a line of %d bytes", len(line))
			}
			_, rest, _ := bytes.Cut([]byte(line), []byte(" "))
			ans, _ := parseTagged(string(rest), n)
			if len(ans.uids) > n {
				t.Fatalf("%d UIDs for %d messages from %q", len(ans.uids), n, line)
			}
		}
	})
}

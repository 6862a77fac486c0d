package pop3

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/mailferry/mailferry/internal/bufpool"
	"github.com/mailferry/mailferry/source"
)

// A message buffer takes what fits within its bound, byte for byte,
// whether io.Copy writes to it or it reads (ReadFrom), and refuses one
// byte more; buffers from the pool come back empty.
func TestCapBuffer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size, max int64 // LIST's size, the bound
		send      int
		wantErr   bool
	}{
		{"as LIST said", 5000, 20000, 5000, false},
		{"more than LIST said, within the bound", 100, 70000, 65000, false},
		{"exactly the bound", 100, 4096, 4096, false},
		{"one byte past the bound", 100, 4096, 4097, true},
		{"far past the bound", 100, 70000, 1 << 20, true},
		{"nothing", 100, 4096, 0, false},
	} {
		data := bytes.Repeat([]byte("0123456789abcdef\r\n"), tc.send/18+1)[:tc.send]
		readers := map[string]func() io.Reader{
			"ReadFrom":  func() io.Reader { return bytes.NewBuffer(data) },
			"one byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
			"half read": func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		}
		for how, r := range readers {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				b := newCapBuffer(tc.size, tc.max)
				_, err := io.Copy(b, r())
				if tc.wantErr {
					if !errors.Is(err, source.ErrSizeMismatch) {
						t.Fatalf("err = %v, want ErrSizeMismatch", err)
					}
					if int64(b.Len()) > tc.max {
						t.Fatalf("held %d bytes, bound %d", b.Len(), tc.max)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), data) {
					t.Fatalf("held %d bytes, differing from the %d sent", b.Len(), len(data))
				}
				bufpool.Put(b.Bytes())
				if again := newCapBuffer(tc.size, tc.max); again.Len() != 0 {
					t.Fatalf("a buffer from the pool holds %d bytes", again.Len())
				}
			})
		}
	}
}

// Open's reader of a kept body yields it whole; closing it twice gives
// its buffer back once.
func TestKeptReader(t *testing.T) {
	b := bufpool.Get(100)
	b = append(b, "Subject: x\r\n\r\nbody\r\n"...)
	k := newKeptReader(b)
	got, err := io.ReadAll(k)
	if err != nil || string(got) != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	k.Close()
	k.Close()
	if c1, c2 := bufpool.Get(100), bufpool.Get(100); &c1[:1][0] == &c2[:1][0] {
		t.Fatal("one buffer handed out twice")
	}
}

package bufpool

import "testing"

// A slice lent has room for what was asked, comes back empty, and one
// given back serves a later request of its class, never a larger one.
func TestGetPut(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 100_000, 1 << 20, 16 << 20, 16<<20 + 1} {
		b := Get(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		b = append(b, 'x')
		Put(b)
		if again := Get(n); len(again) != 0 || cap(again) < n {
			t.Fatalf("Get(%d) after Put: len %d cap %d", n, len(again), cap(again))
		}
	}
	// A slice of odd capacity goes to the class below it.
	Put(make([]byte, 0, 6000))
	if b := Get(8192); cap(b) < 8192 {
		t.Fatalf("Get(8192) lent a slice of cap %d", cap(b))
	}
}

package imap

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/internal/faultproxy"
)

// A folder the destination's listing shows is not created again, nor
// subscribed again when the listing says it is subscribed: a re-run
// spends no round trip on either. One the listing did not show still is.
func TestListedFolderNotCreatedAgain(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	user := newUser(t, srv)
	var mu sync.Mutex
	sent := map[string]int{}
	px := faultproxy.Start(t, dovecottest.Addr(srv.IMAPPort), &faultproxy.Proxy{Rewrite: func(fromServer bool, b []byte) []byte {
		if !fromServer {
			mu.Lock()
			for _, verb := range []string{"CREATE", "SUBSCRIBE"} {
				sent[verb] += bytes.Count(b, []byte(" "+verb+" "))
			}
			mu.Unlock()
		}
		return b
	}})
	cfg := plainConfig(px.Addr, user)
	ctx := context.Background()
	session := func(folders ...string) map[string]int {
		mu.Lock()
		clear(sent)
		mu.Unlock()
		s := open(t, cfg)
		if _, err := s.Folders(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			if err := s.CreateFolder(ctx, f); err != nil {
				t.Fatal(err)
			}
			if err := s.Subscribe(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		mu.Lock()
		defer mu.Unlock()
		return map[string]int{"CREATE": sent["CREATE"], "SUBSCRIBE": sent["SUBSCRIBE"]}
	}
	if got := session("Box", "Other/Sub"); got["CREATE"] != 2 || got["SUBSCRIBE"] != 2 {
		t.Fatalf("first run: %v, want 2 of each", got)
	}
	if got := session("Box", "Other/Sub"); got["CREATE"] != 0 || got["SUBSCRIBE"] != 0 {
		t.Errorf("re-run: %v, want none", got)
	}
	if got := session("Box", "New"); got["CREATE"] != 1 || got["SUBSCRIBE"] != 1 {
		t.Errorf("re-run with a new folder: %v, want 1 of each", got)
	}
}

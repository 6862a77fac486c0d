package imap

import (
	"net/url"
	"testing"

	"github.com/mailferry/mailferry/internal/endpoint"
)

// ?compress=on, asked for on a slow link, doubles the messages in flight;
// nothing else changes them.
func TestKindTuneWorkers(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"", 64},
		{"compress=off", 64},
		{"compress=on", 128},
		{"compress=on&connections=4", 128},
	} {
		opts, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		e := &endpoint.Endpoint{Kind: "imap", Scheme: "imaps", Server: true, Host: "mail.example.org", Options: opts}
		if got := Kind.Tune(e, Kind.Props).Workers; got != tt.want {
			t.Errorf("?%s: %d workers, want %d", tt.query, got, tt.want)
		}
	}
}

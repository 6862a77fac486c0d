package header

import (
	"bytes"
	"strings"
	"testing"
)

var benchHeader = []byte(strings.Repeat("Received: from mx.example.com (mx.example.com [192.0.2.1])\r\n\tby mail.example.org with ESMTPS id abc123\r\n", 8) +
	"From: a@example.com\r\nTo: b@example.org\r\nSubject: a subject line\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\nMessage-ID: <bench.123@example.com>\r\n\r\n" + strings.Repeat("body line\r\n", 2000))

// BenchmarkMessageID reads the Message-ID of a message with a realistic
// header (folding, Received chains). BenchmarkBaselineIndex is a bare
// byte search for the field, which gets folding and case wrong, as the
// floor:
//
//	go test -run - -bench . ./internal/header
func BenchmarkMessageID(b *testing.B) {
	b.SetBytes(int64(len(benchHeader)))
	for range b.N {
		if _, ok, err := MessageID(bytes.NewReader(benchHeader)); !ok || err != nil {
			b.Fatal("not found")
		}
	}
}

func BenchmarkBaselineIndex(b *testing.B) {
	b.SetBytes(int64(len(benchHeader)))
	for range b.N {
		if bytes.Index(benchHeader, []byte("\r\nMessage-ID:")) < 0 {
			b.Fatal("not found")
		}
	}
}

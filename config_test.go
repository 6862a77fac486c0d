package main

import "testing"

// FuzzParseConfig: any input gives a config or an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("jobs:\n  - name: a\n    source: maildir:/x\n    destination: {url: 'imaps://u@h', password_file: /p}\n"))
	f.Add([]byte("jobs: [{name: a, source: 'pop3://u@h?tls=none', destination: 'maildir:/y?layout=fs', dedup: none, workers: 3}]"))
	f.Add([]byte("jobs:\n\t- name: a\n"))
	f.Add([]byte("---\njobs: []\n---\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseConfig(b)
		if err == nil && len(cfg.Jobs) == 0 {
			t.Fatal("a config without jobs was accepted")
		}
	})
}

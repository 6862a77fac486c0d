module github.com/mailferry/mailferry

go 1.26.8

require (
	github.com/emersion/go-imap/v2 v2.0.0-beta.8
	github.com/emersion/go-maildir v0.6.0
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/knadh/go-pop3 v1.0.0
	go.etcd.io/bbolt v1.5.0
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/emersion/go-message v0.18.2 // indirect
	golang.org/x/sys v0.45.0 // indirect
)

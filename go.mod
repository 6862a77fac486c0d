module github.com/mailferry/mailferry

go 1.26.8

require (
	github.com/emersion/go-maildir v0.6.0
	go.etcd.io/bbolt v1.5.0
	go.yaml.in/yaml/v3 v3.0.6
)

require golang.org/x/sys v0.45.0 // indirect

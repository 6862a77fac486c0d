package imap

import (
	"context"
	"time"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/store"
)

var options = []string{"tls", "ca_file", "insecure_skip_verify", "auth", "connections", "timeout", "compress"}

// Kind declares IMAP: imaps://USER@HOST (TLS) and imap://USER@HOST
// (STARTTLS required, or ?tls=none), read and written.
var Kind = &store.Kind{
	Name: "imap",
	Schemes: []endpoint.Scheme{
		{Name: "imap", Server: true, Port: "143", Options: options},
		{Name: "imaps", Server: true, Port: "993", ImplicitTLS: true, Options: options},
	},
	OpenSource: func(ctx context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		c, err := Config(e, env)
		if err != nil {
			return nil, err
		}
		c.KeepAllMail, c.GmailKeywords = env.AllMail, env.GmailKeywords
		return srcimap.Open(ctx, c)
	},
	// Looked at as a destination, a Gmail account is what it is written
	// as: the folders its server lists, All Mail as \Archive (gmail.go).
	OpenLook: func(ctx context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		c, err := Config(e, env)
		if err != nil {
			return nil, err
		}
		return Open(ctx, c)
	},
	OpenSink: func(ctx context.Context, e *endpoint.Endpoint, env store.Env) (sink.Sink, error) {
		c, err := Config(e, env)
		if err != nil {
			return nil, err
		}
		return Open(ctx, c)
	},
	Props: store.Props{
		// An IMAP server writes one mailbox at a time (Dovecot: 600-700
		// APPENDs/s into one mailbox whatever the connections), so
		// folders go in parallel; into Maildir the disk is the limit and
		// parallel folders measured no better.
		FolderParallelism: 3,
		// Messages waiting for a mailbox's connection go in one
		// MULTIAPPEND, and the more wait, the fewer commands the server
		// commits (bench, 5,000 messages: 16 in flight took 2.5x the
		// MULTIAPPEND limit's time, 64 took 1.2-2.4x). Spools together
		// stay within 32 MB.
		Workers: 64,
		// A server may commit a dead client's APPEND late.
		CrashGrace: 2 * time.Second,
	},
	Tune: func(e *endpoint.Endpoint, p store.Props) store.Props {
		if e.Options.Get("compress") == "on" {
			// Asked for on a slow link, where a message waits a round
			// trip and its MULTIAPPEND's last byte for its answer: twice
			// as many in flight keep the link busy (TestWAN, 20 ms each
			// way, 50 Mbit/s: 5.4 s against 6.1 s with 64; on loopback
			// 128 cost IMAP→IMAP 12%, so only here).
			p.Workers *= 2
		}
		return p
	},
}

// Config reads the connection settings of an IMAP endpoint.
func Config(e *endpoint.Endpoint, env store.Env) (srcimap.Config, error) {
	c, err := store.Server(e, env, srcimap.DefaultConns)
	if err != nil {
		return srcimap.Config{}, err
	}
	switch e.Options.Get("compress") {
	case "", "on", "off":
	default:
		return srcimap.Config{}, store.Usagef("%s: compress=%q (want on or off)", e, e.Options.Get("compress"))
	}
	return srcimap.Config{
		Addr: c.Addr, TLS: c.TLS, CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
		User: c.User, Password: c.Password, Token: c.Token, TokenSource: c.TokenSource,
		Auth: c.Auth, Conns: c.Conns, Timeout: c.Timeout, Log: env.Log,
		Compress: e.Options.Get("compress") == "on",
	}, nil
}

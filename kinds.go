package main

import (
	sinkimap "github.com/mailferry/mailferry/sink/imap"
	sinkmaildir "github.com/mailferry/mailferry/sink/maildir"
	sinkmbox "github.com/mailferry/mailferry/sink/mbox"
	srcpop3 "github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/store"
)

// The store kinds this build knows: a new kind is its package, declaring
// a store.Kind, and one line here.
func init() {
	store.Register(sinkmaildir.Kind)
	store.Register(sinkmbox.Kind)
	store.Register(sinkimap.Kind)
	store.Register(srcpop3.Kind)
}

package memory

import (
	"context"
	"sync"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/store"
)

// Kind declares the in-memory store, memory:NAME, for tests: not
// registered in the command, a test registers it with one line. Every
// endpoint with the same NAME is the same store for the life of the
// process.
var Kind = &store.Kind{
	Name:    "memory",
	Schemes: []endpoint.Scheme{{Name: "memory"}},
	OpenSource: func(_ context.Context, e *endpoint.Endpoint, _ store.Env) (source.Source, error) {
		return Named(e.Path), nil
	},
	OpenSink: func(_ context.Context, e *endpoint.Endpoint, _ store.Env) (sink.Sink, error) {
		return Named(e.Path), nil
	},
}

var (
	namedMu sync.Mutex
	named   = map[string]*Store{}
)

// Named returns the store called name, made empty on first use.
func Named(name string) *Store {
	namedMu.Lock()
	defer namedMu.Unlock()
	s, ok := named[name]
	if !ok {
		s = New()
		named[name] = s
	}
	return s
}

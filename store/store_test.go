package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/sink/memory"
	"github.com/mailferry/mailferry/sink/sinktest"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/store"
)

// A kind is its package and one line: registered here, the in-memory
// store is parsed, opened and put through the sink (and so the source)
// conformance suite by the same path the command takes.
func init() { store.Register(memory.Kind) }

// sourceOnly is a kind that cannot be written to.
var sourceOnly = &store.Kind{
	Name:    "readonlytest",
	Schemes: []endpoint.Scheme{{Name: "readonlytest"}},
	OpenSource: func(_ context.Context, e *endpoint.Endpoint, _ store.Env) (source.Source, error) {
		return memory.Named(e.Path), nil
	},
}

func init() { store.Register(sourceOnly) }

var seq atomic.Int64

func parse(t *testing.T, s string) *endpoint.Endpoint {
	t.Helper()
	e, err := endpoint.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMemoryKindConformance(t *testing.T) {
	ctx := context.Background()
	var last *endpoint.Endpoint
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) sink.Sink {
			last = parse(t, fmt.Sprintf("memory:conformance-%d", seq.Add(1)))
			s, err := store.OpenDestination(ctx, last, store.Env{}, false)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Reopen: func(t *testing.T) sink.Sink {
			s, err := store.OpenDestination(ctx, last, store.Env{}, false)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Remove: func(t *testing.T, m source.Message) { memory.Named(last.Path).Remove(m.Folder, m.ID) },
	})
}

func TestOpenDestination(t *testing.T) {
	ctx := context.Background()
	if _, err := store.OpenDestination(ctx, parse(t, "readonlytest:x"), store.Env{}, false); !errors.Is(err, store.ErrUsage) || !strings.Contains(err.Error(), "can only be a source") {
		t.Errorf("writing to a source-only kind: %v", err)
	}
	look, err := store.OpenDestination(ctx, parse(t, "memory:look"), store.Env{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := look.CreateFolder(ctx, "INBOX"); !errors.Is(err, sink.ErrReadOnly) {
		t.Errorf("CreateFolder on a destination opened to look: %v", err)
	}
	if _, err := look.Put(ctx, "INBOX", source.Message{}, strings.NewReader("x")); !errors.Is(err, sink.ErrReadOnly) {
		t.Errorf("Put on a destination opened to look: %v", err)
	}
	if _, ok := look.(sink.FolderStater); !ok {
		t.Error("the folder state was not passed on")
	}
}

func TestUnknownOption(t *testing.T) {
	if _, err := endpoint.Parse("memory:x?bogus=1"); !errors.Is(err, endpoint.ErrSyntax) {
		t.Errorf("an option the kind did not declare: %v", err)
	}
}

func TestDestinationDefaults(t *testing.T) {
	p := store.Destination(parse(t, "memory:x"))
	if p.Workers != 16 || p.FolderParallelism != 1 || p.CrashGrace != 0 {
		t.Errorf("defaults %+v", p)
	}
}

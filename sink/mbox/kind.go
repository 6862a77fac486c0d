package mbox

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcmbox "github.com/mailferry/mailferry/source/mbox"
	"github.com/mailferry/mailferry/store"
)

// Kind declares mbox: mbox:FILE or mbox:DIR read; mbox:DIR written, one
// mboxrd file per folder.
var Kind = &store.Kind{
	Name:       "mbox",
	Schemes:    []endpoint.Scheme{{Name: "mbox", Files: true, Options: []string{"folder", "format", "labels", "expunged", "layout"}}},
	OpenSource: openSource,
	OpenSink: func(_ context.Context, e *endpoint.Endpoint, env store.Env) (sink.Sink, error) {
		layout, err := layoutOf(e)
		if err != nil {
			return nil, err
		}
		return New(e.Path, layout, env.Log)
	},
	// A destination not made yet is looked at as an empty one, and not
	// made.
	OpenLook: func(ctx context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		if _, err := layoutOf(e); err != nil {
			return nil, err
		}
		if _, err := os.Stat(e.Path); errors.Is(err, fs.ErrNotExist) {
			return &Sink{root: e.Path}, nil
		}
		return openSource(ctx, e, env)
	},
}

func layoutOf(e *endpoint.Endpoint) (Layout, error) {
	switch e.Layout {
	case "", "mbox":
		return LayoutMbox, nil
	case "thunderbird":
		return LayoutThunderbird, nil
	}
	return 0, store.Usagef("%s: layout=%q (want mbox or thunderbird)", e, e.Layout)
}

func openSource(_ context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
	o := e.Options
	opt := srcmbox.Options{Folder: o.Get("folder"), Format: o.Get("format"), Log: env.Log}
	switch o.Get("labels") {
	case "", "on":
	case "off":
		opt.NoLabels = true
	default:
		return nil, store.Usagef("%s: labels=%q (want on or off)", e, o.Get("labels"))
	}
	switch o.Get("expunged") {
	case "", "skip":
	case "keep":
		opt.KeepExpunged = true
	default:
		return nil, store.Usagef("%s: expunged=%q (want skip or keep)", e, o.Get("expunged"))
	}
	s, err := srcmbox.Open(e.Path, opt)
	if errors.Is(err, srcmbox.ErrFormat) {
		return nil, store.Usagef("%s", err)
	}
	return s, err
}

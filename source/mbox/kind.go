package mbox

import (
	"context"
	"errors"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/store"
)

// Kind declares mbox: mbox:FILE or mbox:DIR, a source only.
var Kind = &store.Kind{
	Name:       "mbox",
	Schemes:    []endpoint.Scheme{{Name: "mbox", Files: true, Options: []string{"folder", "format", "labels", "expunged"}}},
	OpenSource: open,
}

func open(_ context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
	o := e.Options
	opt := Options{Folder: o.Get("folder"), Format: o.Get("format"), Log: env.Log}
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
	s, err := Open(e.Path, opt)
	if errors.Is(err, ErrFormat) {
		return nil, store.Usagef("%s", err)
	}
	return s, err
}

package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/store"
)

// Kind declares Maildir: maildir:PATH[?layout=fs], read and written.
var Kind = &store.Kind{
	Name:    "maildir",
	Schemes: []endpoint.Scheme{{Name: "maildir", Files: true, Options: []string{"layout"}}},
	OpenSource: func(_ context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		layout, err := layoutOf(e)
		if err != nil {
			return nil, err
		}
		return openSource(e.Path, layout, env)
	},
	OpenSink: func(_ context.Context, e *endpoint.Endpoint, env store.Env) (sink.Sink, error) {
		layout, err := layoutOf(e)
		if err != nil {
			return nil, err
		}
		return New(e.Path, layout, env.Log)
	},
	// A destination not made yet is looked at as an empty one, and not
	// made.
	OpenLook: func(_ context.Context, e *endpoint.Endpoint, env store.Env) (source.Source, error) {
		layout, err := layoutOf(e)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(e.Path); errors.Is(err, fs.ErrNotExist) {
			return empty{}, nil
		}
		return openSource(e.Path, layout, env)
	},
}

func layoutOf(e *endpoint.Endpoint) (srcmaildir.Layout, error) {
	layout, err := srcmaildir.ParseLayout(e.Layout)
	if err != nil {
		return layout, store.Usagef("%s", err)
	}
	return layout, nil
}

func openSource(path string, layout srcmaildir.Layout, env store.Env) (source.Source, error) {
	st, err := srcmaildir.Open(path, layout)
	if err != nil {
		return nil, err
	}
	st.Log = env.Log
	return st, nil
}

// empty is a destination that does not exist yet.
type empty struct{}

func (empty) Folders(context.Context) ([]source.Folder, error) { return nil, nil }
func (empty) List(_ context.Context, f string, _ func(source.Message) error) error {
	return fmt.Errorf("folder %q: %w", f, source.ErrFolderNotFound)
}
func (empty) Open(context.Context, source.Message) (io.ReadCloser, error) {
	return nil, source.ErrMessageNotFound
}
func (empty) Close() error { return nil }

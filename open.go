package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/mailferry/mailferry/internal/endpoint"
	sinkmaildir "github.com/mailferry/mailferry/sink/maildir"
	"github.com/mailferry/mailferry/source"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
)

// errNotBuilt names an endpoint kind this build cannot open yet.
var errNotBuilt = errors.New("this kind of endpoint is not supported yet")

// openSource opens an endpoint for reading.
func openSource(ctx context.Context, e *endpoint.Endpoint, cfg EndpointConfig, log *slog.Logger) (source.Source, error) {
	switch e.Kind {
	case endpoint.Maildir:
		layout, err := srcmaildir.ParseLayout(e.Layout)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		return srcmaildir.Open(e.Path, layout)
	}
	return nil, fmt.Errorf("%s: %w", e.Kind, errNotBuilt)
}

// openDestination opens an endpoint for writing, or, in a dry run, for
// reading only (a missing Maildir is then an empty one, and is not created).
func openDestination(ctx context.Context, e *endpoint.Endpoint, cfg EndpointConfig, dryRun bool, log *slog.Logger) (source.Source, error) {
	switch e.Kind {
	case endpoint.Maildir:
		layout, err := srcmaildir.ParseLayout(e.Layout)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		if dryRun {
			if _, err := os.Stat(e.Path); errors.Is(err, fs.ErrNotExist) {
				return emptySource{}, nil
			}
			return srcmaildir.Open(e.Path, layout)
		}
		return sinkmaildir.New(e.Path, layout, log)
	}
	return nil, fmt.Errorf("%s: %w", e.Kind, errNotBuilt)
}

// emptySource is a destination that does not exist yet, for plan.
type emptySource struct{}

func (emptySource) Folders(context.Context) ([]source.Folder, error) { return nil, nil }
func (emptySource) List(_ context.Context, f string, _ func(source.Message) error) error {
	return fmt.Errorf("folder %q: %w", f, source.ErrFolderNotFound)
}
func (emptySource) Open(_ context.Context, m source.Message) (io.ReadCloser, error) {
	return nil, source.ErrMessageNotFound
}
func (emptySource) Close() error { return nil }

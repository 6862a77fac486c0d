package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand is "mailferry man DIR": the manual pages, one per command,
// written from the same declaration as the help (packages install them).
func manCommand(root *cobra.Command, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write the manual pages (mailferry.1, mailferry-copy.1, ...) to DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Title: "MAILFERRY", Section: "1", Source: "mailferry " + version(), Manual: "mailferry manual"}
			// SOURCE_DATE_EPOCH (reproducible-builds.org) fixes the date, so
			// a package build gives the same bytes every time.
			if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
				if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
					d := time.Unix(sec, 0).UTC()
					header.Date = &d
				}
			}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintf(stderr, "manual pages written to %s\n", args[0])
			return nil
		},
	}
}

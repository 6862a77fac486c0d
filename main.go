// Command mailferry copies and backs up email between POP3, IMAP and
// Maildir, incrementally and resumably. See README.md.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mailferry/mailferry/internal/endpoint"
	"github.com/mailferry/mailferry/plan"
	"github.com/mailferry/mailferry/state"
	"github.com/mailferry/mailferry/store"
)

// Exit codes (README, "Exit codes").
const (
	exitOK         = 0 // every selected message is at the destination
	exitFailed     = 1 // the run failed: cannot open a store, lock held, aborted
	exitUsage      = 2 // usage or config error
	exitIncomplete = 3 // finished, but some messages or folders failed (named in the summary)
	exitLocked     = 4 // another run of the job holds its checkpoint: nothing was done
	exitBudget     = 5 // stopped cleanly at the day's byte budget; the next run continues
)

func main() {
	capGarbage()
	endProfile := profile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	endProfile()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code, err := dispatch(ctx, args, stdout, stderr)
	if err != nil {
		report(stderr, err)
		if code == exitOK {
			code = exitCode(err)
		}
	}
	return code
}

// usageError is a mistake in the command line (exit code 2), with what
// to do instead when there is more to say than "see help".
type usageError struct{ msg, hint string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Hint() string  { return e.hint }

func usagef(format string, a ...any) error { return usageError{msg: fmt.Sprintf(format, a...)} }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, store.ErrUsage) || errors.Is(err, endpoint.ErrSyntax) || errors.Is(err, ErrConfig) || errors.Is(err, plan.ErrCannotDelete) || errors.Is(err, plan.ErrCannotMirror) || errors.Is(err, plan.ErrNothingSelected) {
		return exitUsage
	}
	if errors.Is(err, state.ErrLocked) {
		return exitLocked
	}
	return exitFailed
}

// report prints an error the way age does: "mailferry: error: ..." and,
// where there is something the user can do, "mailferry: hint: ...".
func report(w io.Writer, err error) {
	fmt.Fprintf(w, "mailferry: error: %s\n", errorText(err))
	var hint string
	var h interface{ Hint() string }
	var unknownCA x509.UnknownAuthorityError
	var wrongName x509.HostnameError
	var expired x509.CertificateInvalidError
	switch {
	case errors.As(err, &h) && h.Hint() != "":
		hint = h.Hint()
	case errors.As(err, new(usageError)), errors.Is(err, store.ErrUsage), errors.Is(err, endpoint.ErrSyntax):
		hint = `run "mailferry help" for usage`
	case errors.As(err, &unknownCA):
		hint = "if the server's certificate is from a private CA, add ?ca_file=/path/to/ca.pem to the URL; ?insecure_skip_verify=true turns the check off (anyone on the path can then read the password)"
	case errors.As(err, &wrongName):
		hint = "connect by a name the certificate holds (" + strings.Join(wrongName.Certificate.DNSNames, ", ") + "), or add ?ca_file= with the CA that signed one for this name"
	case errors.As(err, &expired):
		hint = "the server's certificate is expired or not valid for a server; tell its administrator, or add ?insecure_skip_verify=true to go on without the check"
	case errors.Is(err, state.ErrLocked):
		hint = "another mailferry run of this job is still going; wait for it to finish, or stop it"
	case errors.Is(err, state.ErrOtherJob):
		hint = "give this job its own checkpoint with --checkpoint FILE"
	case errors.Is(err, state.ErrCorrupt):
		hint = "move the checkpoint file aside and run again: the destination is listed and deduplicated, so nothing is copied twice"
	case errors.Is(err, plan.ErrNothingSelected):
		hint = "check the source path or URL and the --folder / include patterns against the folders named above"
	case errors.Is(err, plan.ErrInterrupted):
		hint = "what was copied is recorded; run the same command again to continue"
	}
	if hint != "" {
		fmt.Fprintf(w, "mailferry: hint: %s\n", hint)
	}
}

package imap

import (
	"bufio"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testnet"
	"github.com/mailferry/mailferry/source"
)

// fakeServer is a scripted IMAP server for what Dovecot will not do: it
// answers UID FETCH with fetch(w) and records whether a password was sent.
type fakeServer struct {
	addr  string
	caps  string
	fetch func(w *bufio.Writer, tag string) (closeConn bool)
	// list answers a FETCH by sequence number (the listing), if set.
	list      func(w *bufio.Writer, tag string)
	gotLogin  atomic.Bool
	searchHit bool
	// mailbox, when set, answers UID FETCH and UID SEARCH instead of
	// fetch and searchHit, from the UID set asked for.
	mailbox *fakeMailbox
	// sasl records the decoded initial response of AUTHENTICATE.
	sasl atomic.Value
	// logout, if set, runs before a LOGOUT is answered (answered only if
	// it says so).
	logout func() (answer bool)
	// compress offers and takes COMPRESS=DEFLATE; noops and zNoops count
	// the NOOPs before and after it.
	compress      bool
	noops, zNoops atomic.Int32
	// loginCaps, if set, is the [CAPABILITY] of LOGIN's answer.
	loginCaps string
}

func startFake(t *testing.T, f *fakeServer) {
	if f.caps == "" {
		f.caps = "IMAP4rev1"
	}
	if f.compress {
		f.caps += " COMPRESS=DEFLATE"
	}
	f.addr = testnet.Serve(t, f.serve)
}

// zflush compresses and flushes each write: the server's half of
// COMPRESS=DEFLATE, as in RFC 4978.
type zflush struct{ *flate.Writer }

func (z zflush) Write(p []byte) (int, error) {
	if _, err := z.Writer.Write(p); err != nil {
		return 0, err
	}
	return len(p), z.Flush()
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	fmt.Fprintf(w, "* OK [CAPABILITY %s] fake ready\r\n", f.caps)
	w.Flush()
	compressed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return
		}
		tag, cmd := fields[0], strings.ToUpper(fields[1])
		if cmd == "UID" && len(fields) > 2 {
			cmd += " " + strings.ToUpper(fields[2])
		}
		switch cmd {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK done\r\n", f.caps, tag)
		case "LOGIN":
			f.gotLogin.Store(true)
			if f.loginCaps != "" {
				fmt.Fprintf(w, "%s OK [CAPABILITY %s] logged in\r\n", tag, f.loginCaps)
				break
			}
			fmt.Fprintf(w, "%s OK logged in\r\n", tag)
		case "AUTHENTICATE":
			ir := ""
			if len(fields) > 3 {
				b, _ := base64.StdEncoding.DecodeString(fields[3])
				ir = string(b)
			}
			f.sasl.Store(strings.ToUpper(fields[2]) + " " + ir)
			if strings.Contains(ir, "auth=Bearer good-token") {
				fmt.Fprintf(w, "%s OK authenticated\r\n", tag)
			} else {
				fmt.Fprintf(w, "%s NO [AUTHENTICATIONFAILED] bad token\r\n", tag)
			}
		case "LIST":
			fmt.Fprintf(w, "* LIST (\\Noselect) \"/\" \"\"\r\n%s OK done\r\n", tag)
		case "SELECT", "EXAMINE":
			fmt.Fprintf(w, "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 6] n\r\n* FLAGS (\\Seen)\r\n%s OK [READ-ONLY] done\r\n", tag)
		case "FETCH":
			if f.list == nil {
				fmt.Fprintf(w, "%s BAD no listing here\r\n", tag)
				break
			}
			f.list(w, tag)
		case "UID FETCH":
			if f.mailbox != nil {
				f.mailbox.fetch(w, tag, fields[3])
				break
			}
			if f.fetch(w, tag) {
				w.Flush()
				return
			}
		case "UID SEARCH":
			if f.mailbox != nil {
				f.mailbox.search(w, tag, fields[len(fields)-1])
				break
			}
			if f.searchHit {
				fmt.Fprintf(w, "* SEARCH 5\r\n")
			} else {
				fmt.Fprintf(w, "* SEARCH\r\n")
			}
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		case "NOOP":
			if compressed {
				f.zNoops.Add(1)
			} else {
				f.noops.Add(1)
			}
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		case "COMPRESS":
			if !f.compress || compressed {
				fmt.Fprintf(w, "%s BAD no\r\n", tag)
				break
			}
			fmt.Fprintf(w, "%s OK deflating\r\n", tag)
			w.Flush()
			zw, _ := flate.NewWriter(c, flate.BestSpeed)
			r, w, compressed = bufio.NewReader(flate.NewReader(r)), bufio.NewWriter(zflush{zw}), true
			continue
		case "LOGOUT":
			if f.logout != nil && !f.logout() {
				return
			}
			fmt.Fprintf(w, "* BYE bye\r\n%s OK done\r\n", tag)
			w.Flush()
			return
		default:
			fmt.Fprintf(w, "%s BAD unknown command\r\n", tag)
		}
		w.Flush()
	}
}

func fakeStore(t *testing.T, f *fakeServer) *Store {
	startFake(t, f)
	s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var msg5 = source.Message{Folder: "INBOX", ID: "7/5", Size: 5}

func TestOpenReadsBody(t *testing.T) {
	s := fakeStore(t, &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 5 BODY[] {5}\r\nhello)\r\n%s OK done\r\n", tag)
		return false
	}})
	r, err := s.Open(context.Background(), msg5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// Audit #4: a response with UID after the literal is dropped by go-imap.
// The message exists, so it must fail, not pass as deleted.
func TestUIDAfterLiteralIsNotTakenForDeleted(t *testing.T) {
	s := fakeStore(t, &fakeServer{searchHit: true, fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "* 1 FETCH (BODY[] {5}\r\nhello UID 5)\r\n%s OK done\r\n", tag)
		return false
	}})
	r, err := s.Open(context.Background(), msg5)
	if err == nil {
		r.Close()
		t.Fatal("Open succeeded without a body")
	}
	if errors.Is(err, source.ErrMessageNotFound) {
		t.Fatalf("an existing message was reported as deleted: %v", err)
	}
}

func TestExpungedIsNotFound(t *testing.T) {
	s := fakeStore(t, &fakeServer{searchHit: false, fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "%s OK done\r\n", tag)
		return false
	}})
	_, err := s.Open(context.Background(), msg5)
	if !errors.Is(err, source.ErrMessageNotFound) {
		t.Fatalf("Open of an expunged message: %v", err)
	}
}

// Dovecot answers BODY[] NIL for a message another session expunged that
// this session has not been told of yet: it is gone, not an empty body
// (and not a nil literal to read from, which crashed Read).
func TestNILBodyIsNotFound(t *testing.T) {
	for _, hit := range []bool{false, true} {
		s := fakeStore(t, &fakeServer{searchHit: hit, fetch: func(w *bufio.Writer, tag string) bool {
			fmt.Fprintf(w, "* 1 FETCH (UID 5 BODY[] NIL)\r\n%s OK done\r\n", tag)
			return false
		}})
		r, err := s.Open(context.Background(), msg5)
		if err == nil {
			r.Close()
			t.Fatalf("search finds it: %v; Open of a NIL body succeeded", hit)
		}
		if errors.Is(err, source.ErrMessageNotFound) == hit {
			t.Errorf("search finds it: %v; Open gave %v", hit, err)
		}
	}
}

// Audit #5: a literal cut short by the peer reads as a clean EOF in
// go-imap. Reading it must fail.
func TestLiteralCutShortFails(t *testing.T) {
	s := fakeStore(t, &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 5 BODY[] {100}\r\n%s", strings.Repeat("x", 50))
		return true // close mid-literal
	}})
	r, err := s.Open(context.Background(), source.Message{Folder: "INBOX", ID: "7/5", Size: 100})
	if err != nil {
		return // failing at Open is as good
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read %d bytes of 100 with no error", len(b))
	}
}

// A stalled server is noticed by the timeout, not waited on forever.
func TestStalledServerTimesOut(t *testing.T) {
	f := &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		w.Flush()
		time.Sleep(3 * time.Second) // says nothing
		return true
	}}
	startFake(t, f)
	s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	r, err := s.Open(context.Background(), msg5)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v; want a timeout well before the server's 3 s", err, time.Since(start))
	}
}

// imap:// requires STARTTLS: a server without it is refused before any
// password is sent.
func TestNoSTARTTLSRefused(t *testing.T) {
	f := &fakeServer{fetch: func(*bufio.Writer, string) bool { return true }}
	startFake(t, f)
	_, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSStart, User: "u", Password: "p"})
	if !errors.Is(err, ErrNoTLS) {
		t.Fatalf("err = %v, want ErrNoTLS", err)
	}
	if f.gotLogin.Load() {
		t.Fatal("the password was sent in clear")
	}
}

// A server that says BYE in the middle of a FETCH: the read fails as a
// transient error, so the planner retries on a new connection.
func TestByeMidFetchIsTransient(t *testing.T) {
	s := fakeStore(t, &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 5 BODY[] {100}\r\n%s", strings.Repeat("x", 40))
		w.Flush()
		fmt.Fprint(w, "\r\n* BYE shutting down\r\n")
		return true
	}})
	r, err := s.Open(context.Background(), source.Message{Folder: "INBOX", ID: "7/5", Size: 100})
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	var te *source.TransientError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want a source.TransientError", err, err)
	}
}

// The whole body arrives but the connection drops before the command's
// tagged OK (what failed TestLossyNetwork in CI): Close fails as a
// transient error, so the planner looks at the destination and retries,
// rather than giving the message up.
func TestDropAfterBodyIsTransient(t *testing.T) {
	s := fakeStore(t, &fakeServer{fetch: func(w *bufio.Writer, tag string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 5 BODY[] {10}\r\n0123456789)\r\n")
		return true // no tagged OK
	}})
	r, err := s.Open(context.Background(), source.Message{Folder: "INBOX", ID: "7/5", Size: 10})
	if err == nil {
		if b, rerr := io.ReadAll(r); rerr != nil || len(b) != 10 {
			t.Fatalf("read %q, %v", b, rerr)
		}
		err = r.Close()
	}
	var te *source.TransientError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want a source.TransientError", err, err)
	}
}

// With an OAuth2 token, login uses the bearer mechanism the server offers,
// and sends no password.
func TestOAuth2(t *testing.T) {
	for _, tt := range []struct {
		caps, want string
	}{
		{"IMAP4rev1 SASL-IR AUTH=XOAUTH2", "XOAUTH2 user=alice\x01auth=Bearer good-token\x01\x01"},
		{"IMAP4rev1 SASL-IR AUTH=OAUTHBEARER AUTH=XOAUTH2", "OAUTHBEARER n,a=alice,"},
	} {
		f := &fakeServer{caps: tt.caps, fetch: func(*bufio.Writer, string) bool { return true }}
		startFake(t, f)
		s, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "alice", Token: "good-token"})
		if err != nil {
			t.Fatalf("%s: %v", tt.caps, err)
		}
		s.Close()
		if got, _ := f.sasl.Load().(string); !strings.HasPrefix(got, tt.want) || f.gotLogin.Load() {
			t.Fatalf("%s: AUTHENTICATE %q, LOGIN sent %v; want %q", tt.caps, got, f.gotLogin.Load(), tt.want)
		}
		_, err = Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "alice", Token: "expired"})
		if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "expired") {
			t.Fatalf("%s, bad token: %v", tt.caps, err)
		}
	}
	f := &fakeServer{caps: "IMAP4rev1 AUTH=PLAIN", fetch: func(*bufio.Writer, string) bool { return true }}
	startFake(t, f)
	if _, err := Open(context.Background(), Config{Addr: f.addr, TLS: TLSNone, User: "alice", Token: "good-token"}); !errors.Is(err, ErrAuth) {
		t.Fatalf("a server without bearer mechanisms: %v", err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testnet"
)

// hostileIMAP is a scripted IMAP server: it logs anyone in, shows one
// INBOX of one message, and answers the listing FETCH with list and any
// UID FETCH with fetch.
func hostileIMAP(list, fetch func(w *bufio.Writer, tag string)) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		fmt.Fprint(w, "* OK [CAPABILITY IMAP4rev1] hostile\r\n")
		w.Flush()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return
			}
			tag, cmd := f[0], strings.ToUpper(f[1])
			if cmd == "UID" && len(f) > 2 {
				cmd += " " + strings.ToUpper(f[2])
			}
			switch cmd {
			case "CAPABILITY":
				fmt.Fprintf(w, "* CAPABILITY IMAP4rev1\r\n%s OK done\r\n", tag)
			case "LIST":
				fmt.Fprintf(w, "* LIST () \"/\" INBOX\r\n%s OK done\r\n", tag)
			case "SELECT", "EXAMINE":
				fmt.Fprintf(w, "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 6] n\r\n* FLAGS (\\Seen)\r\n%s OK done\r\n", tag)
			case "STATUS":
				fmt.Fprintf(w, "* STATUS INBOX (MESSAGES 1 UIDNEXT 6 UIDVALIDITY 7)\r\n%s OK done\r\n", tag)
			case "FETCH":
				list(w, tag)
			case "UID FETCH":
				fetch(w, tag)
			case "LOGOUT":
				fmt.Fprintf(w, "* BYE\r\n%s OK done\r\n", tag)
				w.Flush()
				return
			default:
				fmt.Fprintf(w, "%s OK done\r\n", tag)
			}
			if w.Flush() != nil {
				return
			}
		}
	}
}

// listOne answers the listing with one small message.
func listOne(w *bufio.Writer, tag string) {
	const field = "Message-ID: <a@b>\r\n\r\n"
	fmt.Fprintf(w, "* 1 FETCH (UID 5 FLAGS () INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" RFC822.SIZE 40 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)\r\n%s OK done\r\n", len(field), field, tag)
}

// runHostile runs a copy from src to a fresh Maildir, sending sig after
// signalAfter if that is not zero. It returns the exit code, stderr, the
// wall time and the peak RSS in MB.
func runHostile(t *testing.T, src string, sig os.Signal, signalAfter time.Duration, args ...string) (code int, stderr string, took time.Duration, rssMB int64) {
	t.Helper()
	var buf bytes.Buffer
	cmd := exec.Command(binary(t), append([]string{"copy", src, "maildir:" + filepath.Join(t.TempDir(), "dst"), "--checkpoint", filepath.Join(t.TempDir(), "ckpt")}, args...)...)
	cmd.Env = append(os.Environ(), "MAILFERRY_SRC_PASSWORD=secret")
	cmd.Stderr = &buf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if signalAfter > 0 {
		time.AfterFunc(signalAfter, func() { cmd.Process.Signal(sig) })
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running after 60 s; stderr %.500q", buf.String())
	}
	took = time.Since(start)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, buf.String(), took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10
}

// Hostile servers, met as a user meets them: the binary, bounded in
// memory (peak RSS measured by the kernel) and in time, fails with a
// clear, short error; a signal ends any wait at once.
func TestHostileServersEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	const maxRSS = 150
	const huge = 600 << 20
	imapURL := func(addr string) string { return "imap://u@" + addr + "?tls=none&timeout=1s" }
	pop3URL := func(addr string) string { return "pop3://u@" + addr + "?tls=none&timeout=1s" }
	silent := func(w *bufio.Writer, tag string) { w.Flush(); time.Sleep(30 * time.Second) }
	tests := []struct {
		name     string
		url      func(string) string
		handle   func(net.Conn)
		signal   time.Duration // 0: none
		wantCode int
		maxTime  time.Duration
		want     string // in stderr
	}{
		{"IMAP greeting without end", imapURL, func(c net.Conn) {
			defer c.Close()
			c.Write([]byte("* OK "))
			testnet.Flood(c, huge)
		}, 0, exitFailed, 20 * time.Second, "more than mailferry accepts"},
		{"IMAP Message-ID field of 600 MB", imapURL, hostileIMAP(func(w *bufio.Writer, tag string) {
			fmt.Fprintf(w, "* 1 FETCH (UID 5 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n", huge)
			testnet.Flood(w, huge)
			w.Flush()
			fmt.Fprintf(w, ")\r\n%s OK done\r\n", tag)
		}, silent), 0, exitIncomplete, 30 * time.Second, "INBOX"},
		{"IMAP silent while fetching", imapURL, hostileIMAP(listOne, silent), 0, exitIncomplete, 25 * time.Second, "INBOX"},
		{"IMAP keep-alive trickle", imapURL, hostileIMAP(listOne, func(w *bufio.Writer, tag string) {
			for range 300 {
				fmt.Fprint(w, "* OK still working\r\n")
				if w.Flush() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}), 0, exitIncomplete, 25 * time.Second, "INBOX"},
		{"SIGTERM while a server is silent", imapURL, hostileIMAP(listOne, silent), 1500 * time.Millisecond, exitFailed, 3 * time.Second, "interrupted"},
		{"POP3 greeting without end", pop3URL, func(c net.Conn) {
			defer c.Close()
			c.Write([]byte("+OK "))
			testnet.Flood(c, huge)
		}, 0, exitFailed, 20 * time.Second, "more than mailferry accepts"},
		{"POP3 message far bigger than LIST", pop3URL, func(c net.Conn) {
			defer c.Close()
			r, w := bufio.NewReader(c), bufio.NewWriter(c)
			fmt.Fprint(w, "+OK ready\r\n")
			w.Flush()
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch f := strings.Fields(line); strings.ToUpper(f[0]) {
				case "CAPA":
					fmt.Fprint(w, "+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n")
				case "UIDL":
					fmt.Fprint(w, "+OK\r\n1 u1\r\n.\r\n")
				case "LIST":
					fmt.Fprint(w, "+OK\r\n1 100\r\n.\r\n")
				case "RETR", "TOP":
					fmt.Fprint(w, "+OK\r\nMessage-ID: <big@x>\r\n\r\n")
					testnet.Flood(w, huge)
					w.Flush()
					return
				default:
					fmt.Fprint(w, "+OK\r\n")
				}
				w.Flush()
			}
		}, 0, exitIncomplete, 30 * time.Second, "u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testnet.Serve(t, tt.handle)
			code, stderr, took, rss := runHostile(t, tt.url(addr), syscall.SIGTERM, tt.signal)
			t.Logf("exit %d in %v, peak RSS %d MB\n%s", code, took.Round(time.Millisecond), rss, stderr)
			if code != tt.wantCode || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %.600q; want exit %d naming %q", code, stderr, tt.wantCode, tt.want)
			}
			if rss > maxRSS {
				t.Errorf("peak RSS %d MB, over %d", rss, maxRSS)
			}
			if took > tt.maxTime {
				t.Errorf("took %v, over %v", took, tt.maxTime)
			}
			if len(stderr) > 4000 {
				t.Errorf("stderr is %d bytes: server text quoted whole?", len(stderr))
			}
		})
	}
}

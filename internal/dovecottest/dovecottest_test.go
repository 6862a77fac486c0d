package dovecottest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartServes(t *testing.T) {
	s := Start(t, Options{}, "alice")
	for _, p := range []int{s.IMAPPort, s.POP3Port} {
		c, err := net.Dial("tcp", Addr(p))
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "* OK") && !strings.HasPrefix(line, "+OK") {
			t.Fatalf("greeting on %d: %q", p, line)
		}
	}
	pem, _ := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", Addr(s.IMAPSPort), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("IMAPS with the test CA: %v", err)
	}
	c.Close()
}

// TestDiesWithTestProcess runs a test process that starts a Dovecot, kills
// it with SIGKILL (no cleanup runs), and checks that the Dovecot master
// is gone too: a stopped test run leaves no server behind.
func TestDiesWithTestProcess(t *testing.T) {
	if f := os.Getenv("DOVECOTTEST_HELPER_PIDFILE"); f != "" {
		s := Start(t, Options{})
		os.WriteFile(f, []byte(strconv.Itoa(s.pid)), 0o600)
		time.Sleep(time.Minute)
		return
	}
	if Binary() == "" {
		Start(t, Options{}) // skips, or fails under CI=true
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiesWithTestProcess$")
	cmd.Env = append(os.Environ(), "DOVECOTTEST_HELPER_PIDFILE="+pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := 0
	for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the helper did not start a Dovecot in 30 s")
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(string(b))
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("master %d not running before the kill: %v", pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("Dovecot master %d outlived the killed test process", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Package dovecottest starts a throwaway Dovecot (IMAP, IMAPS, POP3, POP3S)
// on 127.0.0.1 for tests: its own config, users, Maildirs, logs and a
// self-signed certificate in a temporary directory, stopped when the test
// ends. It never touches /etc/dovecot or a system Dovecot.
//
// Without a dovecot binary the test is skipped with the reason, except with
// CI=true, where it fails: CI must prove the real-server tests ran.
package dovecottest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Password is every test user's password.
const Password = "pass-Wörd 1"

// Options change the server's behaviour.
type Options struct {
	// IMAPCapability replaces the advertised IMAP capabilities, e.g. to
	// hide UIDPLUS.
	IMAPCapability string
	// DisablePlaintextAuth refuses LOGIN and PLAIN without TLS.
	DisablePlaintextAuth bool
	// Courier makes the personal namespace Courier-style: prefix "INBOX."
	// and "." as the hierarchy separator.
	Courier bool
	// Compress loads the imap_zlib plugin: the server offers
	// COMPRESS=DEFLATE (RFC 4978).
	Compress bool
}

// Server is a running Dovecot.
type Server struct {
	Dir                                      string
	IMAPPort, IMAPSPort, POP3Port, POP3SPort int
	CAFile                                   string // the certificate, PEM: give it as the CA
	conf                                     string
	mailUID, mailGID                         int
	mu                                       sync.Mutex
	next                                     int
	exited                                   <-chan error // the master's end
	pid                                      int          // the master's
}

// Binary returns the path of dovecot, or "".
func Binary() string {
	for _, p := range []string{"dovecot", "/usr/sbin/dovecot"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// Start starts a Dovecot with users (more can be added with AddUser).
func Start(t testing.TB, opt Options, users ...string) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d), and CI=true forbids skipping")
		}
		t.Skip("dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d (scripts/test.sh does, as root)")
	}
	// A short path: Dovecot's unix sockets live under it (108-byte limit).
	dir, err := os.MkdirTemp("", "mfdc")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	s := &Server{Dir: dir, conf: filepath.Join(dir, "dovecot.conf")}
	t.Cleanup(func() { s.stop(t); os.RemoveAll(dir) })

	internal, login := "dovecot", "dovenull"
	if os.Getuid() == 0 {
		// Mail processes may not run as root: use nobody.
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("no user nobody to run mail processes as: %v", err)
		}
		s.mailUID, _ = strconv.Atoi(u.Uid)
		s.mailGID, _ = strconv.Atoi(u.Gid)
		if _, err := user.Lookup("dovecot"); err != nil {
			internal = "nobody"
		}
		if _, err := user.Lookup("dovenull"); err != nil {
			login = "nobody"
		}
	} else {
		u, _ := user.Current()
		s.mailUID, s.mailGID = os.Getuid(), os.Getgid()
		internal, login = u.Username, u.Username
	}
	ports := freePorts(t, 4)
	s.IMAPPort, s.IMAPSPort, s.POP3Port, s.POP3SPort = ports[0], ports[1], ports[2], ports[3]
	s.CAFile = filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	writeCert(t, s.CAFile, keyFile)
	for _, d := range []string{"run", "state", "mail"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "passwd"), nil, 0o644)
	os.Chown(filepath.Join(dir, "mail"), s.mailUID, s.mailGID)

	capLine := ""
	if opt.IMAPCapability != "" {
		capLine = "imap_capability = " + opt.IMAPCapability
	}
	if opt.Compress {
		capLine += "\n  mail_plugins = $mail_plugins zlib imap_zlib"
	}
	ns := "separator = /"
	if opt.Courier {
		ns = "separator = .\n  prefix = INBOX."
	}
	plain := "no"
	if opt.DisablePlaintextAuth {
		plain = "yes"
	}
	conf := fmt.Sprintf(`# mailferry test instance
instance_name = mailferry-test-%[1]d
base_dir = %[2]s/run
state_dir = %[2]s/state
log_path = %[2]s/dovecot.log
listen = 127.0.0.1
protocols = imap pop3
shutdown_clients = yes
# Crash tests kill clients by the hundred; leave room for the sessions
# Dovecot has not yet noticed are dead.
default_process_limit = 1000
default_client_limit = 10000
default_internal_user = %[3]s
default_login_user = %[4]s
first_valid_uid = %[5]d
first_valid_gid = %[6]d
mail_uid = %[5]d
mail_gid = %[6]d
disable_plaintext_auth = %[7]s
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[2]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[2]s/passwd
  default_fields = uid=%[5]d gid=%[6]d home=%[2]s/mail/%%u
}
mail_location = maildir:~/Maildir
mail_fsync = optimized
namespace inbox {
  inbox = yes
  %[15]s
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Archive {
    special_use = \Archive
  }
}
ssl = yes
ssl_cert = <%[8]s
ssl_key = <%[9]s
protocol imap {
  mail_max_userip_connections = 200
  %[10]s
}
protocol pop3 {
  mail_max_userip_connections = 200
  pop3_uidl_format = %%08Xu%%08Xv
}
service imap-login {
  service_count = 0
  process_min_avail = 2
  inet_listener imap {
    address = 127.0.0.1
    port = %[11]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[12]d
  }
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[13]d
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = %[14]d
  }
}
`, s.IMAPPort, dir, internal, login, s.mailUID, s.mailGID, plain, s.CAFile, keyFile, capLine,
		s.IMAPPort, s.IMAPSPort, s.POP3Port, s.POP3SPort, ns)
	if opt.Compress {
		// The fastest level: the server shares the test machine's cores
		// with the client, where a real one has its own. The setting's
		// name since Dovecot 2.3.15 (doc.dovecot.org, imap-zlib plugin);
		// an unknown name in a plugin block is ignored without a word,
		// which left the level at its default, 6, and Dovecot's
		// compression took 5 of the 9 CPU seconds of a compressed copy.
		conf += "plugin {\n  imap_compress_deflate_level = 1\n}\n"
	}
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Dovecot re-reads a changed passwd-file only when its mtime moves to
	// another second, so accounts are made up front; NewUser hands them out.
	for i := 1; i <= poolUsers; i++ {
		users = append(users, fmt.Sprintf("user%d", i))
	}
	for _, u := range users {
		s.AddUser(t, u)
	}
	s.startMaster(t)
	return s
}

// startMaster starts the master process and waits until every port
// listens.
func (s *Server) startMaster(t testing.TB) {
	t.Helper()
	// The master runs in the foreground as this process's child, and is
	// killed when this process dies (dieWithParent), however it dies: a
	// test run stopped with SIGTERM or SIGKILL leaves no Dovecot behind
	// (its own children exit when the master is gone). Its output goes to
	// a file, not a pipe, which its children would hold open.
	startLog := filepath.Join(s.Dir, "start.log")
	out, _ := os.Create(startLog)
	cmd := exec.Command(Binary(), "-F", "-c", s.conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start dovecot: %v", err)
	}
	s.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); out.Close() }()
	s.exited = exited
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range []int{s.IMAPPort, s.IMAPSPort, s.POP3Port, s.POP3SPort} {
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				b, _ := os.ReadFile(startLog)
				t.Fatalf("start dovecot: it exited (%v)\n%s\n%s", err, b, s.Log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("dovecot did not listen on %d: %v\n%s", p, err, s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Restart stops the server, as an administrator's restart does (every
// connection dropped, none taken while it is down), and starts it again
// on the same ports with the same mail, after down.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	s.halt()
	time.Sleep(down)
	s.startMaster(t)
}

const poolUsers = 300

// NewUser returns the name of an account no other caller of NewUser got:
// an empty mailbox for one test.
func (s *Server) NewUser(t testing.TB) string {
	s.mu.Lock()
	s.next++
	n := s.next
	s.mu.Unlock()
	if n > poolUsers {
		t.Fatalf("dovecottest: more than %d accounts asked for", poolUsers)
	}
	return fmt.Sprintf("user%d", n)
}

// AddUser adds a user with Password (Dovecot re-reads the passwd-file when
// it changes).
func (s *Server) AddUser(t testing.TB, name string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, "passwd"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%s:{PLAIN}%s::::::\n", name, Password)
	f.Close()
	// Make sure the passwd-file's mtime moves even within one second.
	now := time.Now().Add(time.Duration(len(name)) * time.Millisecond)
	os.Chtimes(filepath.Join(s.Dir, "passwd"), now, now)
}

// Deliver writes messages straight into user's INBOX (Maildir new/), as a
// local delivery agent would, each with its mtime (Dovecot's received
// date). It bypasses IMAP, so content IMAP cannot carry (NUL bytes, 0
// bytes) reaches the mailbox too.
func (s *Server) Deliver(t testing.TB, user string, msgs [][]byte, dates []time.Time) {
	t.Helper()
	md := s.Maildir(user)
	for _, d := range []string{filepath.Dir(md), md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
		os.MkdirAll(d, 0o700)
		os.Chown(d, s.mailUID, s.mailGID)
	}
	for i, m := range msgs {
		// Unique across calls too: one message per call is a delivery.
		p := filepath.Join(md, "new", fmt.Sprintf("%d.M%dP%d.mailferry-test", 1500000000+i, time.Now().UnixNano()+int64(i), os.Getpid()))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, s.mailUID, s.mailGID)
		if i < len(dates) && !dates[i].IsZero() {
			os.Chtimes(p, dates[i], dates[i])
		}
	}
}

// Own gives the mail user the files under user's home, for callers that
// wrote a Maildir there themselves.
func (s *Server) Own(t testing.TB, user string) {
	t.Helper()
	err := filepath.Walk(filepath.Dir(s.Maildir(user)), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, s.mailUID, s.mailGID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Maildir returns the Maildir of user.
func (s *Server) Maildir(user string) string { return filepath.Join(s.Dir, "mail", user, "Maildir") }

// Addr returns 127.0.0.1:port.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// Log returns the server log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}

// Doveadm runs doveadm against this instance.
func (s *Server) Doveadm(args ...string) ([]byte, error) {
	out, err := os.CreateTemp(s.Dir, "doveadm")
	if err != nil {
		return nil, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command("doveadm", append([]string{"-c", s.conf}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return b, err
}

func (s *Server) stop(t testing.TB) {
	if t.Failed() {
		if log := s.Log(); log != "" {
			t.Logf("dovecot log (last 3000 bytes):\n%s", tail(log, 3000))
		}
	}
	s.halt()
}

// halt stops the master, and kills it if it does not stop.
func (s *Server) halt() {
	if s.exited == nil {
		return // the master never started
	}
	stop := exec.Command(Binary(), "-c", s.conf, "stop")
	stop.Stdout, stop.Stderr = nil, nil
	stop.Run()
	select {
	case <-s.exited:
		return
	case <-time.After(5 * time.Second):
	}
	// The master is this process's child: kill it and reap it.
	if p, err := os.FindProcess(s.pid); err == nil {
		p.Kill()
	}
	<-s.exited
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// writeCert makes a self-signed certificate for 127.0.0.1 and localhost.
func writeCert(t testing.TB, certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailferry test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

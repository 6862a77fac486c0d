package endpoint

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Scheme is what a store kind declares about one of its URL schemes; the
// parser validates from it (see package store, which registers them).
type Scheme struct {
	Name        string   // as typed before the ":", lower case ("imaps")
	Kind        string   // the store kind it opens ("imap")
	Server      bool     // SCHEME://[USER@]HOST[:PORT]; else SCHEME:PATH
	Port        string   // a server's default port
	ImplicitTLS bool     // TLS from the first byte; else STARTTLS or ?tls=none
	Options     []string // the query options it accepts
	// Files: SCHEME:PATH names a file or directory, which a config file
	// gives relative to itself (else PATH is a name, not a path).
	Files bool
}

var (
	mu      sync.RWMutex
	schemes = map[string]Scheme{}
)

// Register adds a scheme. Registering a name twice is a programming error.
func Register(sc Scheme) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := schemes[sc.Name]; dup {
		panic(fmt.Sprintf("endpoint: scheme %q registered twice", sc.Name))
	}
	schemes[sc.Name] = sc
}

func lookup(name string) (Scheme, bool) {
	mu.RLock()
	defer mu.RUnlock()
	sc, ok := schemes[strings.ToLower(name)]
	return sc, ok
}

// names returns the registered schemes, sorted.
func names() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for n := range schemes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// examples is a hint of every shape: "maildir:PATH, imaps://USER@HOST".
func examples() string {
	var out []string
	for _, n := range names() {
		sc, _ := lookup(n)
		if sc.Server {
			out = append(out, n+"://USER@HOST")
		} else {
			out = append(out, n+":PATH")
		}
	}
	return strings.Join(out, ", ")
}

// Lookup returns the registered scheme name (any case).
func Lookup(name string) (Scheme, bool) { return lookup(name) }

// Schemes returns the registered schemes, sorted by name.
func Schemes() []Scheme {
	var out []Scheme
	for _, n := range names() {
		sc, _ := lookup(n)
		out = append(out, sc)
	}
	return out
}

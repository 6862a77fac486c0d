package main

import (
	"path/filepath"
	"reflect"
	"strings"

	"github.com/mailferry/mailferry/internal/endpoint"
)

// A config file names files relative to itself, as systemd units and
// crontabs expect: "mailferry run /etc/mailferry/backup.yaml" reads
// maildir:mail and checkpoint: state/backup.ckpt beside backup.yaml,
// wherever it is started from. A leading ~/ is the home directory.

// resolvePaths makes every file name in cfg absolute against dir: the
// settings declared file:"true", the endpoints' files, and the paths of
// endpoints that are not servers.
func resolvePaths(cfg *Config, dir string) error {
	abs := func(p *string) error {
		if *p == "" {
			return nil
		}
		x, err := expandHome(*p)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(x) {
			x = filepath.Join(dir, x)
		}
		*p = x
		return nil
	}
	files := func(v any) error {
		rv := reflect.ValueOf(v).Elem()
		for _, s := range settingsOf(rv.Type()) {
			if s.tag.Get("file") != "true" {
				continue
			}
			if f, ok := rv.FieldByIndex(s.index).Addr().Interface().(*string); ok {
				if err := abs(f); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := files(&cfg.Run); err != nil {
		return err
	}
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		if err := files(j); err != nil {
			return err
		}
		for _, e := range []*EndpointConfig{&j.Source, &j.Destination} {
			for _, f := range []*string{&e.PasswordFile, &e.OAuth2ClientSecretFile, &e.OAuth2RefreshTokenFile, &e.OAuth2ServiceAccountFile, &e.OAuth2ClientCertificateFile} {
				if err := abs(f); err != nil {
					return err
				}
			}
			if err := resolveURLPath(&e.URL, abs); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveURLPath resolves the PATH of SCHEME:PATH[?QUERY] for the
// schemes whose path is a file (maildir:, mbox:); server URLs and names
// are left alone.
func resolveURLPath(u *string, abs func(*string) error) error {
	scheme, rest, ok := strings.Cut(*u, ":")
	if !ok || strings.HasPrefix(rest, "//") || rest == "" || !schemeNamesFiles(scheme) {
		return nil
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if err := abs(&path); err != nil {
		return err
	}
	*u = scheme + ":" + path
	if hasQuery {
		*u += "?" + query
	}
	return nil
}

func schemeNamesFiles(name string) bool {
	sc, ok := endpoint.Lookup(name)
	return ok && sc.Files
}

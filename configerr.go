package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config errors that point at the line to fix and say what was meant, in
// place of the YAML library's wording ("cannot unmarshal !!str `many`
// into int").

// keyError is a setting whose value is wrong; key is its YAML path
// ("filters.since"), so that a config error names the line it is on.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// atKey ties err to the setting key.
func atKey(key string, err error) error {
	if err == nil {
		return nil
	}
	return &keyError{key: key, err: err}
}

// underKey prefixes err with the section it came from ("limits: ..."),
// keeping the key it is tied to.
func underKey(section string, err error) error {
	key := section
	var ke *keyError
	if errors.As(err, &ke) {
		key = section + "." + ke.key
	}
	return &keyError{key: key, err: fmt.Errorf("%s: %v", section, err)}
}

// lineOf returns the line of the value at the dotted path under the
// mapping n, or 0.
func lineOf(n *yaml.Node, path string) int {
	for _, k := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	if n == nil {
		return 0
	}
	return n.Line
}

var (
	reUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	reUnmarshal    = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
	reParserLine   = regexp.MustCompile(`^line (\d+): `)
)

// yamlError rewrites a decoding error of data in the user's terms.
func yamlError(err error, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = reUnknownField.ReplaceAllStringFunc(msg, func(m string) string {
		key := reUnknownField.FindStringSubmatch(m)[1]
		if slices.Contains(endpointKeys, key) {
			return fmt.Sprintf("unknown key %q here: it belongs to an endpoint (source: or destination: written as a map with url:)", key)
		}
		return fmt.Sprintf("unknown key %q", key)
	})
	msg = reUnmarshal.ReplaceAllStringFunc(msg, func(m string) string {
		sm := reUnmarshal.FindStringSubmatch(m)
		val, into := sm[2], sm[3]
		switch {
		case sm[1] == "map" || sm[1] == "seq":
			return fmt.Sprintf("a %s is not a %s here", map[string]string{"map": "map", "seq": "list"}[sm[1]], goTypeWord(into))
		case into == "[]string":
			return fmt.Sprintf("%q should be a list, like [%s]", val, val)
		}
		return fmt.Sprintf("%q is not %s", val, goTypeWord(into))
	})
	// The parser reports where the enclosing block began; a line indented
	// unlike every line above it is what to fix.
	if m := reParserLine.FindStringSubmatch(msg); m != nil && strings.Contains(msg, "did not find expected") {
		reported, _ := strconv.Atoi(m[1])
		if bad := badIndent(data); bad > reported {
			msg = fmt.Sprintf("line %d: its indentation matches no line above it (%s)", bad, strings.TrimPrefix(msg, m[0]))
		}
	}
	return errors.New(strings.TrimSpace(strings.ReplaceAll(msg, "\n  ", "; ")))
}

// goTypeWord names a Go type as the YAML value expected.
func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "map["):
		return "map (KEY: VALUE lines)"
	case strings.HasPrefix(t, "[]"):
		return "list"
	}
	return "a map of settings"
}

// badIndent returns the first line of data whose indentation steps back
// to a column no enclosing line used, or 0.
func badIndent(data []byte) int {
	var open []int // the columns of the enclosing blocks
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		col := len(line) - len(trimmed)
		popped := false
		for len(open) > 0 && open[len(open)-1] > col {
			open, popped = open[:len(open)-1], true
		}
		if popped && (len(open) == 0 || open[len(open)-1] != col) {
			return i + 1
		}
		if len(open) == 0 || open[len(open)-1] < col {
			open = append(open, col)
		}
		// "- key: v" opens a block at the key's column too.
		if rest, ok := strings.CutPrefix(trimmed, "-"); ok && strings.HasPrefix(rest, " ") {
			open = append(open, col+1+len(rest)-len(strings.TrimLeft(rest, " ")))
		}
	}
	return 0
}

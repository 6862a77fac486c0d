package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every setting is declared once, as a field of Job (how one job runs) or
// of RunSettings (how this invocation runs), with struct tags:
//
//	yaml:"key"         its key in a config file (a job's, or the file's top level)
//	flag:"name"        its command-line flag
//	help:"text"        the flag's help; arg:"N" names its value there
//	def:"value"        its default, when it is not the zero value
//	enum:"a,b,c"       the values it takes: checked, and offered by completion
//	cmds:"copy,..."    the commands that take it (default: copy, plan, run)
//	alias:"name"       a second flag for the same list (aliashelp, aliasarg: its help)
//	merge:"append"     a list flag adds to the file's list instead of replacing it
//	file:"true"        its value is a file name (completion offers files)
//	min:"1"            a flag's least value (0 in a file means the default)
//
// From these the flags, their help and shell completions are made, a flag
// given on the command line replaces (or, merge:"append", extends) the
// file's value, and enum values are checked; settingsTest checks that
// every YAML key has a flag and the other way round.

// setting is one declared field, found by walking the tags.
type setting struct {
	path  string // YAML path, "limits.daily_byte_budget"
	flag  string
	alias string
	tag   reflect.StructTag
	index []int // field index path from the root struct
}

func (s setting) cmds() []string {
	if c := s.tag.Get("cmds"); c != "" {
		return strings.Split(c, ",")
	}
	return []string{"copy", "plan", "run"}
}

func (s setting) enum() []string {
	if e := s.tag.Get("enum"); e != "" {
		return strings.Split(e, ",")
	}
	return nil
}

// settingsOf lists the settings declared in struct type t.
func settingsOf(t reflect.Type) []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("flag") == "" {
				if key != "-" && f.IsExported() {
					walk(f.Type, prefix+key+".", idx)
				}
				continue
			}
			if flag := f.Tag.Get("flag"); flag != "" {
				out = append(out, setting{path: prefix + key, flag: flag, alias: f.Tag.Get("alias"), tag: f.Tag, index: idx})
			}
		}
	}
	walk(t, "", nil)
	return out
}

// bindFlags declares on fs every setting of *target that cmd takes, bound
// to target's fields, and registers completions on c.
func bindFlags(c *cobra.Command, target any, cmd string) {
	v := reflect.ValueOf(target).Elem()
	fs := c.Flags()
	for _, s := range settingsOf(v.Type()) {
		if !slices.Contains(s.cmds(), cmd) {
			continue
		}
		f := v.FieldByIndex(s.index)
		help := s.tag.Get("help")
		if arg := s.tag.Get("arg"); arg != "" {
			// pflag shows the word in backquotes as the value's name.
			help = strings.Replace(help, arg, "`"+arg+"`", 1)
		}
		def := s.tag.Get("def")
		switch p := f.Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, s.flag, def, help)
		case *bool:
			fs.BoolVar(p, s.flag, def == "true", help)
		case *int:
			n := 0
			fmt.Sscan(def, &n)
			fs.IntVar(p, s.flag, n, help)
		case *float64:
			x := 0.0
			fmt.Sscan(def, &x)
			fs.Float64Var(p, s.flag, x, help)
		case *[]string:
			// One value per use, never split at commas: folder names
			// may hold them.
			fs.Var((*listValue)(p), s.flag, help)
			if s.alias != "" {
				ah := s.tag.Get("aliashelp")
				if arg := s.tag.Get("aliasarg"); arg != "" {
					ah = strings.Replace(ah, arg, "`"+arg+"`", 1)
				}
				fs.Var((*listValue)(p), s.alias, ah)
			}
		case *map[string]string:
			fs.Var((*mapValue)(p), s.flag, help)
		default:
			panic(fmt.Sprintf("setting %s: no flag for type %T", s.path, p))
		}
		if e := s.enum(); e != nil {
			c.RegisterFlagCompletionFunc(s.flag, cobra.FixedCompletions(e, cobra.ShellCompDirectiveNoFileComp))
		} else if s.tag.Get("file") == "true" {
			c.MarkFlagFilename(s.flag)
		}
	}
}

// applyFlags copies into *dst each setting whose flag (or alias) was given
// on fs, from *flags, where they were bound: the command line wins over
// the file. Lists marked merge:"append" are added to the file's.
func applyFlags(fs *pflag.FlagSet, dst, flags any) {
	dv, fv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(flags).Elem()
	for _, s := range settingsOf(dv.Type()) {
		if !changed(fs, s.flag) && !changed(fs, s.alias) {
			continue
		}
		d, f := dv.FieldByIndex(s.index), fv.FieldByIndex(s.index)
		if s.tag.Get("merge") == "append" && d.Kind() == reflect.Slice {
			both := reflect.MakeSlice(d.Type(), 0, d.Len()+f.Len())
			d.Set(reflect.AppendSlice(reflect.AppendSlice(both, d), f))
			continue
		}
		d.Set(f)
	}
}

func changed(fs *pflag.FlagSet, name string) bool {
	if name == "" {
		return false
	}
	f := fs.Lookup(name)
	return f != nil && f.Changed
}

// fillDefaults gives each setting of *v still at its zero value the
// default it declares.
func fillDefaults(v any) {
	rv := reflect.ValueOf(v).Elem()
	for _, s := range settingsOf(rv.Type()) {
		def := s.tag.Get("def")
		f := rv.FieldByIndex(s.index)
		if def == "" || !f.IsZero() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(def)
		case reflect.Int:
			var n int64
			fmt.Sscan(def, &n)
			f.SetInt(n)
		case reflect.Bool:
			f.SetBool(def == "true")
		}
	}
}

// checkEnums checks every setting of *v that declares its values.
func checkEnums(v any) error {
	rv := reflect.ValueOf(v).Elem()
	for _, s := range settingsOf(rv.Type()) {
		e := s.enum()
		f := rv.FieldByIndex(s.index)
		if e == nil || f.Kind() != reflect.String || f.String() == "" {
			continue
		}
		if !slices.Contains(e, f.String()) {
			return atKey(s.path, usagef("%s (--%s): %q is not one of %s", s.path, s.flag, f.String(), strings.Join(e, ", ")))
		}
	}
	return nil
}

// named is how a message names a setting of *v: its YAML key and its
// flag, both from the declaration ("max_delete_fraction
// (--max-delete-fraction)"). An undeclared path is a bug of the caller.
func named(v any, path string) string {
	for _, s := range settingsOf(reflect.TypeOf(v).Elem()) {
		if s.path == path {
			return s.path + " (--" + s.flag + ")"
		}
	}
	panic("setting " + path + " is not declared")
}

// checkMins checks the numbers given as flags against their declared
// least value: --workers 0 is a mistake, not "the default".
func checkMins(fs *pflag.FlagSet, v any) error {
	rv := reflect.ValueOf(v).Elem()
	for _, s := range settingsOf(rv.Type()) {
		m := s.tag.Get("min")
		if m == "" || !changed(fs, s.flag) {
			continue
		}
		var least int64
		fmt.Sscan(m, &least)
		if f := rv.FieldByIndex(s.index); f.Kind() == reflect.Int && f.Int() < least {
			return usagef("%s (--%s): %d is less than %d", s.path, s.flag, f.Int(), least)
		}
	}
	return nil
}

// listValue is a flag that may be given more than once.
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error { *l = append(*l, v); return nil }
func (l *listValue) Type() string       { return "stringArray" }

// mapValue is a repeatable KEY=VALUE flag.
type mapValue map[string]string

func (m *mapValue) String() string {
	var parts []string
	for k, v := range *m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (m *mapValue) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want SOURCE=DESTINATION", s)
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
	return nil
}

func (m *mapValue) Type() string { return "mapping" }

package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// docKeys returns every key path of Config as docs/config.md names it
// (services' keys as services.NAME.KEY).
func docKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[map[string]*Service]():
		docKeys(reflect.TypeFor[Service](), prefix+"NAME.", out)
		return
	case t.Kind() != reflect.Struct:
		*out = append(*out, strings.TrimSuffix(prefix, "."))
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if f.Type == reflect.TypeFor[*map[string]any]() || f.Type == reflect.TypeFor[*Redis]() && name == "redis_alt" {
			*out = append(*out, prefix+name)
			continue
		}
		docKeys(f.Type, prefix+name+".", out)
	}
}

var (
	rowRE  = regexp.MustCompile(`^\| ([^|]+) \| ([^|]+) \|`)
	tickRE = regexp.MustCompile("`([^`]*)`")
	keyRE  = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*$`)
)

// docRows reads the key tables of docs/config.md: key path -> the default
// column as written (a backticked literal, or the cell's text).
func docRows(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		def := strings.TrimSpace(m[2])
		if d := tickRE.FindStringSubmatch(def); d != nil && d[0] == def {
			def = d[1]
		} else {
			def = "(" + def + ")"
		}
		for _, k := range tickRE.FindAllStringSubmatch(m[1], -1) {
			key := k[1]
			if !keyRE.MatchString(key) {
				continue
			}
			if strings.HasPrefix(section, "## `services`") {
				key = "services.NAME." + key
			}
			rows[key] = def
		}
	}
	return rows
}

// TestDocsListEveryKey: docs/config.md is the reference, so a key added to
// Config without a row there fails here, as does a row for a key that
// does not exist.
func TestDocsListEveryKey(t *testing.T) {
	var keys []string
	docKeys(reflect.TypeFor[Config](), "", &keys)
	rows := docRows(t)
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			t.Errorf("docs/config.md has no row for %s", k)
		}
	}
	for k := range rows {
		if !strings.Contains(strings.Join(keys, " ")+" ", k+" ") && !strings.HasPrefix(k, "redis_alt") {
			t.Errorf("docs/config.md documents %s, which is not a key", k)
		}
	}
}

// TestDocsDefaults: each default written in docs/config.md is the value
// an absent key takes. The key is set to the documented value in a file
// whose sections are otherwise empty; the result must equal the same file
// without the key.
func TestDocsDefaults(t *testing.T) {
	rows := docRows(t)
	checked := 0
	for key, def := range rows {
		if strings.HasPrefix(def, "(") {
			continue // "absent", "required": no literal default
		}
		segs := strings.Split(strings.ReplaceAll(key, "NAME", "s"), ".")
		extra := ""
		if segs[0] == "authentication" {
			// The block needs its URL to validate.
			extra = "validation_url: http://auth/"
		}
		// a: {b: {c: V}} against a: {b: {}}.
		nest := func(inner string) string {
			for i := len(segs) - 2; i >= 0; i-- {
				inner = segs[i] + ": {" + inner + "}"
			}
			return inner
		}
		leaf := segs[len(segs)-1] + ": " + def
		if extra != "" {
			leaf = extra + ", " + leaf
		}
		withDoc, base := nest(leaf), ""
		if len(segs) > 1 {
			base = nest(extra)
		}
		with, err := Parse([]byte(withDoc), key)
		if err != nil {
			t.Errorf("%s: documented default %s: %v", key, def, err)
			continue
		}
		without, err := Parse([]byte(base), key)
		if err != nil {
			t.Errorf("%s: %v\n%s", key, err, base)
			continue
		}
		if !reflect.DeepEqual(normalize(with), normalize(without)) {
			t.Errorf("%s: docs/config.md says the default is %s; an absent key differs", key, def)
		}
		checked++
	}
	if checked < 60 {
		t.Errorf("only %d defaults checked: is the table format still what docRows reads?", checked)
	}
}

// normalize makes configs that behave the same compare equal: an empty
// list is no list, require_authentication true is its default.
func normalize(c *Config) *Config {
	for _, s := range c.Services {
		if s.RequiresAuth() {
			s.RequireAuthentication = nil
		}
	}
	nilEmpty(reflect.ValueOf(c))
	return c
}

func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			nilEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			nilEmpty(v.Field(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			nilEmpty(v.MapIndex(k))
		}
	case reflect.Slice:
		if v.Len() == 0 && v.CanSet() {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}

package convert

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeMapsEverySetting: the README's "From SocketShark settings to
// mako keys" table names every setting of SocketShark's config_defaults.py
// (defaults.json) and example_config.py, nested keys included.
func TestReadmeMapsEverySetting(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "### From SocketShark settings to mako keys")
	if start < 0 {
		t.Fatal("README has no \"From SocketShark settings to mako keys\" section")
	}
	table := text[start:]
	if end := strings.Index(table[4:], "\n## "); end >= 0 {
		table = table[:end+4]
	}
	var want []string
	for name, v := range Defaults() {
		want = append(want, "`"+name)
		if m, ok := v.(map[string]any); ok {
			for k := range m {
				want = append(want, name+"["+strconv.Quote(k)+"]")
			}
		}
	}
	// Settings that config_defaults.py has only in comments, in .get()
	// calls or in example_config.py.
	want = append(want,
		`WS_SSL["cert"]`, `WS_SSL["key"]`, `REDIS["db"]`,
		`METRICS["prometheus"]["host"]`, `METRICS["prometheus"]["port"]`, `METRICS["log"]`,
		`AUTHENTICATION["ticket"]["validation_url"]`, `AUTHENTICATION["ticket"]["auth_fields"]`,
	)
	for _, k := range serviceKeys {
		want = append(want, "`"+k+"`")
	}
	for _, w := range want {
		if !strings.Contains(table, w) {
			t.Errorf("the README's mapping table does not name %s", w)
		}
	}
}

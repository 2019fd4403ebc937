// Package pyref runs protocol/testdata/socketshark_json.py, the model of
// what SocketShark puts on the wire for a given JSON input, for mako's
// differential tests against Python's json module.
package pyref

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// SkipEnv names the variable that lets the tests skip when python3 is
// missing; without it a missing python3 fails them (CI has python3).
const SkipEnv = "MAKO_SKIP_PYTHON"

// Result is the script's answer for one input.
type Result struct {
	// Outcome is "reply" (Wire is sent), "invalid" (kind canon: not JSON),
	// "crash" (an exception SocketShark does not handle: the connection
	// ends or the message is dropped), "drop" (a published message not
	// delivered) or "close" (the WebSocket layer closes the connection).
	Outcome string  `json:"outcome"`
	Wire    *string `json:"wire"`  // normalised: json.dumps(sort_keys=True), sent_at removed
	Order   *string `json:"order"` // repr(float(options["order"])) for kind published
}

// Python returns the interpreter the tests use, failing t (or skipping it
// when SkipEnv is set) when it is missing.
func Python(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv(SkipEnv) != "" {
		t.Skipf("python3 not found and %s is set", SkipEnv)
	}
	t.Fatalf("python3 not found: the JSON differential tests need it (set %s=1 to skip them)", SkipEnv)
	return ""
}

func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "protocol", "testdata", "socketshark_json.py")
}

// Run feeds every input to the script as kind ("client", "published",
// "service" or "canon") and returns the answers in order.
func Run(t testing.TB, kind string, inputs [][]byte) []Result {
	t.Helper()
	py := Python(t)
	var in bytes.Buffer
	for _, b := range inputs {
		line, _ := json.Marshal(map[string]string{"kind": kind, "b64": base64.StdEncoding.EncodeToString(b)})
		in.Write(line)
		in.WriteByte('\n')
	}
	cmd := exec.Command(py, script())
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script(), err, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("%s: %d answers for %d inputs", script(), len(lines), len(inputs))
	}
	res := make([]Result, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &res[i]); err != nil {
			t.Fatalf("%s: answer %q: %v", script(), l, err)
		}
	}
	return res
}

// Str returns *p, or "<none>".
func Str(p *string) string {
	if p == nil {
		return "<none>"
	}
	return *p
}

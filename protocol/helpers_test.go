package protocol

import (
	stdjson "encoding/json"
	"testing"
)

// decodeObject decodes out with the standard library, an independent
// decoder, failing the test when out is not a single JSON object.
func decodeObject(t *testing.T, out []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := stdjson.Unmarshal(out, &m); err != nil || m == nil {
		t.Fatalf("output is not a JSON object: %v: %s", err, out)
	}
	return m
}

func strPtr(s string) *string { return &s }

package protocol

import (
	"bytes"
	stdjson "encoding/json"
	"os/exec"
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	east := time.FixedZone("east", 2*3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 25, 8, 24, 12, 123456789, time.UTC), "2026-11-25T08:24:12.123456+00:00"},
		{time.Date(2026, 11, 25, 8, 24, 12, 0, time.UTC), "2026-11-25T08:24:12+00:00"}, // Python leaves out a zero fraction
		{time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC), "2026-01-02T03:04:05+00:00"},
		{time.Date(2026, 11, 25, 10, 24, 12, 1000, east), "2026-11-25T08:24:12.000001+00:00"},
		{time.Date(2027, 1, 1, 1, 0, 0, 0, east), "2026-12-31T23:00:00+00:00"},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "0001-01-01T00:00:00+00:00"},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), "9999-12-31T23:59:59.999999+00:00"},
	}
	for _, tt := range tests {
		if got := string(AppendTime([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("AppendTime(%v) = %s, want x%s", tt.in, got, tt.want)
		}
	}
}

func TestParseISOTime(t *testing.T) {
	d := func(y, mo, dd, h, mi, s, us int) time.Time {
		return time.Date(y, time.Month(mo), dd, h, mi, s, us*1000, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-25T08:24:12.123456+00:00", d(2026, 11, 25, 8, 24, 12, 123456), true},
		{"2026-11-25T08:24:12Z", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"2026-11-25T08:24:12", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"2026-11-25 08:24:12", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"2026-11-25t08:24:12", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"2026-11-25é08:24:12", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"2026-11-25", d(2026, 11, 25, 0, 0, 0, 0), true},
		{"20261125", d(2026, 11, 25, 0, 0, 0, 0), true},
		{"20261125T082412", d(2026, 11, 25, 8, 24, 12, 0), true},
		{"20261125T082412.5+0100", d(2026, 11, 25, 7, 24, 12, 500000), true},
		{"2026-11-25T08", d(2026, 11, 25, 8, 0, 0, 0), true},
		{"2026-11-25T08:24", d(2026, 11, 25, 8, 24, 0, 0), true},
		{"2026-11-25T0824", d(2026, 11, 25, 8, 24, 0, 0), true},
		{"2026-11-25T08:24:12.1", d(2026, 11, 25, 8, 24, 12, 100000), true},
		{"2026-11-25T08:24:12,25", d(2026, 11, 25, 8, 24, 12, 250000), true},
		{"2026-11-25T08:24:12.123456789", d(2026, 11, 25, 8, 24, 12, 123456), true},
		{"2026-11-25T08:24:12+05:30", d(2026, 11, 25, 2, 54, 12, 0), true},
		{"2026-11-25T08:24:12-05", d(2026, 11, 25, 13, 24, 12, 0), true},
		{"2026-11-25T08:24:12+00:00:30", d(2026, 11, 25, 8, 23, 42, 0), true},
		{"2026-11-25T08:24:12+00:00:30.5", d(2026, 11, 25, 8, 23, 41, 500000), true},
		{"2026-11-25T23:30:00-01:00", d(2026, 11, 26, 0, 30, 0, 0), true},
		{"2024-02-29T00:00:00", d(2024, 2, 29, 0, 0, 0, 0), true},
		{"", time.Time{}, false},
		{"2026", time.Time{}, false},
		{"2026-11", time.Time{}, false},
		{"2026-11-25T", time.Time{}, false},
		{"2026-11-25T8:24", time.Time{}, false},
		{"2026-11-25T08:24:12.", time.Time{}, false},
		{"2026-11-25T08:24.5", d(2026, 11, 25, 8, 24, 0, 500000), true},
		{"2026-11-25T08,5", d(2026, 11, 25, 8, 0, 0, 500000), true},
		{"2026-11-25T08:24:12.12a", time.Time{}, false},
		{"2026-11-25T08:24:12 ", time.Time{}, false},
		{"2026-11-25T08:24:12z", time.Time{}, false},
		{"2026-11-25T08:24:12ZZ", time.Time{}, false},
		{"2026-11-25T08:24:12+24:00", time.Time{}, false},
		{"2026-11-25T08:24:12+1", time.Time{}, false},
		{"2026-11-25T24:00:00", time.Time{}, false},
		{"2026-11-25T08:60:00", time.Time{}, false},
		{"2026-11-25T08:00:60", time.Time{}, false},
		{"2026-13-01", time.Time{}, false},
		{"2026-00-01", time.Time{}, false},
		{"2023-02-29", time.Time{}, false},
		{"0000-01-01", time.Time{}, false},
		{"0001-01-01T00:00:00+01:00", time.Time{}, false},
		{"2026-1125", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2026-11-25T08:24:12+00:00 trailing", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseISOTime(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseISOTime(%q) = (%v, %v), want (%v, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestAppendISOFormat: the output of Python's
// datetime.fromisoformat(s).isoformat(), which SocketShark sends as
// published_at.
func TestAppendISOFormat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2026-11-25T08:24:12.123456+00:00", "2026-11-25T08:24:12.123456+00:00"},
		{"2026-11-25T08:24:12Z", "2026-11-25T08:24:12+00:00"},
		{"2026-11-25T08:24:12.000000-00:00", "2026-11-25T08:24:12+00:00"},
		{"2026-11-25T08:24:12", "2026-11-25T08:24:12"},
		{"2026-11-25T08:24:12.5", "2026-11-25T08:24:12.500000"},
		{"2026-11-25", "2026-11-25T00:00:00"},
		{"20261125T082412.5+0100", "2026-11-25T08:24:12.500000+01:00"},
		{"2026-11-25 08:24:12+05:30", "2026-11-25T08:24:12+05:30"},
		{"2026-11-25T08:24:12-05", "2026-11-25T08:24:12-05:00"},
		{"2026-11-25T08:24:12+00:00:30", "2026-11-25T08:24:12+00:00:30"},
		{"2026-11-25T08:24:12-01:02:03.5", "2026-11-25T08:24:12-01:02:03.500000"},
		{"2026-11-25T08:24:12.123456789+02:00", "2026-11-25T08:24:12.123456+02:00"},
	}
	for _, tt := range tests {
		got, ok := AppendISOFormat([]byte("x"), tt.in)
		if !ok || string(got) != "x"+tt.want {
			t.Errorf("AppendISOFormat(%q) = %s, %v; want x%s", tt.in, got, ok, tt.want)
		}
	}
	if got, ok := AppendISOFormat([]byte("x"), "yesterday"); ok || string(got) != "x" {
		t.Errorf("AppendISOFormat(yesterday) = %s, %v", got, ok)
	}
}

// TestAppendISOFormatMatchesPython runs the same inputs through python3's
// datetime.fromisoformat(s).isoformat() (SocketShark's published_at echo)
// and through AppendISOFormat: both must refuse, or both give the same text.
func TestAppendISOFormatMatchesPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	inputs := []string{
		"2026-11-25T08:24:12.123456+00:00", "2026-11-25T08:24:12Z", "2026-11-25T08:24:12",
		"2026-11-25 08:24:12", "2026-11-25", "20261125", "20261125T082412", "20261125T082412.5+0100",
		"2026-11-25T08", "2026-11-25T08:24", "2026-11-25T0824", "2026-11-25T08:24:12.1",
		"2026-11-25T08:24:12,25", "2026-11-25T08:24:12.123456789", "2026-11-25T08:24:12+05:30",
		"2026-11-25T08:24:12-05", "2026-11-25T08:24:12+00:00:30", "2026-11-25T08:24:12+00:00:30.5",
		"2026-11-25T08:24:12-00:00", "2026-11-25T08:24:12.000000+00:00", "2024-02-29T00:00:00",
		"2026-11-25T23:30:00-01:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999",
		"2026-11-25T08:24:12.000001-11:59", "2026-11-25T00:00:00+23:59",
		"", "2026", "2026-11", "2026-11-25T", "2026-11-25T8:24", "2026-11-25T08:24:12.",
		"2026-11-25T08:24.5", "2026-11-25T08.5", "2026-11-25T0824.5", "2026-11-25T08,5", "2026-11-25T08.",
		"2026-11-25T08:24:12+01:30.5", "2026-11-25T08:24:12+01.5", "2026-11-25T08:24,5Z", "2026-11-25T08:24:",
		"2026-11-25T08:24:12+01:", "2026-11-25T08:24:12+1:00", "2026-11-25T08:24:12 ", "2026-11-25T08:24:12+24:00",
		"2026-11-25T24:00:00", "2026-13-01", "2023-02-29", "0000-01-01", "yesterday",
	}
	in, _ := stdjson.Marshal(inputs)
	script := `
import json, sys
from datetime import datetime
out = []
for s in json.load(sys.stdin):
    try:
        out.append(datetime.fromisoformat(s).isoformat())
    except ValueError:
        out.append(None)
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want []*string
	if err := stdjson.Unmarshal(raw, &want); err != nil || len(want) != len(inputs) {
		t.Fatalf("python3 output %s: %v", raw, err)
	}
	for i, s := range inputs {
		got, ok := AppendISOFormat(nil, s)
		switch {
		case want[i] == nil && ok:
			t.Errorf("%q: python refuses it, mako gives %s", s, got)
		case want[i] != nil && !ok:
			t.Errorf("%q: python gives %s, mako refuses it", s, *want[i])
		case want[i] != nil && string(got) != *want[i]:
			t.Errorf("%q: python gives %s, mako %s", s, *want[i], got)
		}
	}
}

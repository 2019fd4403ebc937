package service

import (
	"strings"
	"testing"

	"mako/internal/pyref"
	"mako/protocol"
)

// TestPythonJSONServiceReplies runs service reply bodies through Python's
// json module as SocketShark's http_post reads them
// (protocol/testdata/socketshark_json.py) and through decode: status,
// error text and data must be the same values (docs/json.md).
func TestPythonJSONServiceReplies(t *testing.T) {
	cases := []string{
		`{"status":"ok"}`, `{"status":"ok","data":null}`, `{"status":"ok","data":{"a":1,"a":2}}`,
		`{"status":"ok","data":[1.0e5,1E400,-0,-0.0,12345678901234567890,NaN,-Infinity]}`,
		`{"status":"error","error":"x\ud800y"}`, `{"status":"error","error":"\ud83d\ude00\u0000\/"}`,
		`{"status":"error","error":"a","error":"b"}`, `{"status":"error","error":5}`, `{"status":"error","error":""}`,
		`{"st\u0061tus":"\u006fk","data":"\udfff"}`, `{"status":"ok","status":"error"}`, `{"status":"OK"}`,
		` {"status":"ok"} `, "\ufeff{\"status\":\"ok\"}", "{\"status\":\"ok\"}\f", `[]`, `null`, `"ok"`, ``, ` `,
		`{"status":"ok",}`, `{"status":"ok","data":01}`, `{"status":"ok","data":nan}`,
		`{"status":"ok","data":` + strings.Repeat("[", 899) + strings.Repeat("]", 899) + `}`,
		`{"status":"ok","data":1` + strings.Repeat("0", 4299) + `}`,
		`{"status":"ok","data":1` + strings.Repeat("0", 4300) + `}`,
		"{\"status\":\"ok\",\"data\":\"\xff\"}",
	}
	inputs := make([][]byte, len(cases))
	for i, c := range cases {
		inputs[i] = []byte(c)
	}
	want := pyref.Run(t, "service", inputs)
	got := make([][]byte, len(inputs))
	for i, b := range inputs {
		r := decode(b)
		if r.Broken {
			got[i] = []byte("broken")
			continue
		}
		out := []byte(`{"ok":`)
		if r.OK {
			out = append(out, "true"...)
		} else {
			out = append(out, "false"...)
		}
		out = append(out, `,"error":`...)
		if r.Error == "" {
			out = append(out, "null"...)
		} else {
			out = protocol.AppendJSONString(out, r.Error)
		}
		out = append(out, `,"data":`...)
		if r.Data == nil {
			out = append(out, "null"...)
		} else {
			out = append(out, r.Data...)
		}
		got[i] = append(out, '}')
	}
	canon := pyref.Run(t, "canon", got)
	for i, c := range cases {
		w := want[i]
		// A reply Python cannot read ("crash": unhandled exception) is
		// Broken in mako: the client gets "Unhandled exception." either way.
		same := (w.Outcome == "crash" && string(got[i]) == "broken") ||
			(w.Outcome == "reply" && canon[i].Outcome == "reply" && *w.Wire == *canon[i].Wire)
		if !same {
			t.Errorf("reply %.200q:\n python %s %s\n mako   %s (%s)", c, w.Outcome, pyref.Str(w.Wire), got[i], pyref.Str(canon[i].Wire))
		}
	}
}

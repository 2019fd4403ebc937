package edge

import (
	"strings"
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// JSON read as Python's json.loads reads it, end to end (docs/json.md): a
// lone surrogate escape comes back as the same escape in every echo, NaN
// and Infinity literals are accepted, duplicate keys resolve to the last,
// and published data keeps its number text.
func TestJSONAsPythonReadsIt(t *testing.T) {
	t.Parallel()
	f := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["svc"] = &config.Service{RequireAuthentication: &f, ExtraFields: []string{"extra"}}
	}, oneLoop)
	rc := open(t, srv)
	for _, tc := range []struct{ send, want string }{
		{`{"event":"ping","data":"x\ud800y"}`, `{"event":"pong","data":"x\ud800y"}`},
		{`{"event":"ping","data":NaN}`, `{"event":"pong","data":null}`},
		{`{"event":"ping","event":"x\udfff","data":[Infinity]}`, `{"event":"x\udfff","status":"error","error":"Event not found."}`},
		{`{"event":"subscribe","subscription":"nosvc.x\ud800y"}`, `{"event":"subscribe","status":"error","error":"Invalid service.","subscription":"nosvc.x\ud800y"}`},
		{`{"event":"unsubscribe","subscr\u0069ption":"svc.\ud800","extra":[-Infinity,1E400]}`,
			`{"event":"unsubscribe","status":"error","error":"Subscription does not exist.","extra":[-Infinity,1E400],"subscription":"svc.\ud800"}`},
	} {
		rc.send(tc.send)
		if got := string(rc.next().payload); got != tc.want {
			t.Errorf("sent %s\n got  %s\n want %s", tc.send, got, tc.want)
		}
	}

	rc.send(`{"event":"subscribe","subscription":"svc.\ud800","extra":"e"}`)
	if got := string(rc.next().payload); got != `{"event":"subscribe","status":"ok","extra":"e","subscription":"svc.\ud800"}` {
		t.Fatalf("subscribe: %s", got)
	}
	data := `[NaN,1.0e5,12345678901234567890,"\ud800",{"k":1,"k":2}]`
	e2e.Publish(t, srv, `{"subscription":"svc.\ud800","data":`+data+`,"options":{"order":"١"}}`)
	e2e.Publish(t, srv, `{"subscription":"svc.\ud800","data":"stale","options":{"order":0.5}}`)
	e2e.Publish(t, srv, `{"subscription":"svc.\ud800","data":"next","options":{"order":"2"}}`)
	for _, want := range []string{`"subscription":"svc.\ud800","data":` + data + `,"received_at"`, `"data":"next"`} {
		if got := string(rc.next().payload); !strings.Contains(got, want) {
			t.Fatalf("pushed %s\nwant it to hold %s", got, want)
		}
	}
}

// A binary frame is decoded from bytes as json.loads decodes bytes: a UTF-8
// byte order mark is skipped, UTF-16 and UTF-32 are recognised, and an
// encoded lone surrogate comes back as its escape.
func TestJSONBinaryFramesAsPythonReadsThem(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)
	utf16le := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return b
	}
	for _, tc := range []struct {
		send []byte
		want string
	}{
		{[]byte("\xef\xbb\xbf{\"event\":\"ping\",\"data\":\"bom\"}"), `{"event":"pong","data":"bom"}`},
		{utf16le(`{"event":"ping","data":"le"}`), `{"event":"pong","data":"le"}`},
		{[]byte("{\"event\":\"ping\",\"data\":\"\xed\xa0\x80\"}"), `{"event":"pong","data":"\ud800"}`},
	} {
		rc.write(clientFrame(true, 0, opBinary, tc.send, true))
		if got := string(rc.next().payload); got != tc.want {
			t.Errorf("sent %q\n got  %s\n want %s", tc.send, got, tc.want)
		}
	}
	// A text frame with a byte order mark is not JSON, as for json.loads(str).
	rc.send("\ufeff{\"event\":\"ping\"}")
	if got := string(rc.next().payload); !strings.Contains(got, `"status":"error"`) {
		t.Errorf("text frame with BOM: %s", got)
	}
}

// What a service sends is read as json.loads reads it and reaches the
// client as the same values: its error text keeps a lone surrogate escape,
// its data keeps NaN and its number text, the last duplicate wins; what
// the client sends reaches the service the same way.
func TestJSONServiceRepliesAsPythonReadsThem(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	f := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["svc"] = &config.Service{RequireAuthentication: &f, OnMessage: svc.URL("/on_message")}
	}, oneLoop)
	rc := open(t, srv)
	rc.send(`{"event":"subscribe","subscription":"svc.t"}`)
	if got := string(rc.next().payload); got != `{"event":"subscribe","status":"ok","subscription":"svc.t"}` {
		t.Fatalf("subscribe: %s", got)
	}
	svc.Reply("/on_message", `{"status":"error","error":"x","error":"x\ud800y","data":[NaN,1.0e5,12345678901234567890]}`)
	rc.send(`{"event":"message","subscription":"svc.t","data":{"t":"\udfff","n":-Infinity}}`)
	call := svc.Next(t)
	if !strings.Contains(string(call.Raw), `"data":{"t":"\udfff","n":-Infinity}`) {
		t.Errorf("the service got %s", call.Raw)
	}
	want := `{"event":"message","status":"error","error":"x\ud800y","data":[NaN,1.0e5,12345678901234567890],"subscription":"svc.t"}`
	if got := string(rc.next().payload); got != want {
		t.Errorf("reply\n got  %s\n want %s", got, want)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// tail ends with status 1 and says why when the auth or subscribe reply is
// an error: nothing would ever follow.
func TestTailErrorReplies(t *testing.T) {
	cfg := e2e.Config()
	cfg.Services["locked"] = &config.Service{} // needs authentication
	srv := e2e.StartServer(t, cfg)
	url := "ws://" + srv.Addr()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"subscribe refused", []string{url, "locked.x"}, "subscribe failed: Authentication required."},
		{"unknown service", []string{url, "nope.x"}, "subscribe failed: Invalid service."},
		{"auth refused", []string{"-ticket", "t", url, "locked.x"}, "auth failed: Authentication method unsupported."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := tail(tc.args, &out, &errb); code != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
			if !strings.Contains(out.String(), `"status":"error"`) {
				t.Fatalf("the error reply is printed: stdout %q", out.String())
			}
		})
	}
}

package conformance

import (
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

func TestSmokeRoundTrip(t *testing.T) {
	svc := e2e.NewService(t)
	cfg := e2e.Config()
	cfg.Authentication.Ticket = &config.Ticket{ValidationURL: svc.URL("/auth"), AuthFields: []string{"user_id"}}
	svc.Reply("/auth", `{"status":"ok","user_id":"u1"}`)
	cfg.Services["books"] = &config.Service{Authorizer: svc.URL("/authorizer")}
	srv := e2e.StartServer(t, cfg)
	c := e2e.Dial(t, srv)
	if m := c.Roundtrip(`{"event":"auth","ticket":"t"}`); m["status"] != "ok" {
		t.Fatalf("auth: %v", m)
	}
	if call := svc.Next(t); call.Body["ticket"] != "t" {
		t.Fatalf("auth body %s", call.Raw)
	}
	if m := c.Roundtrip(`{"event":"subscribe","subscription":"books.b1"}`); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	if call := svc.Next(t); call.Body["user_id"] != "u1" || call.Body["subscription"] != "books.b1" {
		t.Fatalf("authorizer body %s", call.Raw)
	}
	e2e.Publish(t, srv, `{"subscription":"books.b1","data":{"n":1}}`)
	if m := c.Recv(); m["event"] != "message" || m["data"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("message: %v", m)
	}
}

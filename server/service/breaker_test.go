package service

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
)

// A pooled keep-alive connection that is alive when the request is written,
// and that the service then ends after reading the request without
// answering (it may have acted on it): this is the case fasthttp retries on
// its own for a reused connection, and it must cost a counted try. With
// tries: 1 the service receives the POST once; with tries: 3, three times,
// each on its own connection after the first. A 429 with a reset header in
// between counts as a try too.
func TestCallReusedConnectionDroppedAfterRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tries int
		want  int32 // POSTs of the second call
		ok    bool
	}{{"tries=1", 1, 1, false}, {"tries=3", 3, 3, false}, {"tries=3 with 429 then ok", 3, 3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, nil, func(s *rawServer, n int, c net.Conn, br *bufio.Reader) {
				defer c.Close()
				for s.read(br) {
					total := s.requests.Load()
					switch {
					case total == 1:
						// The first call is answered and pools the connection.
						if _, err := io.WriteString(c, okResponse); err != nil {
							return
						}
						continue
					case tc.ok && total == 3:
						_, _ = io.WriteString(c, "HTTP/1.1 429 Too Many Requests\r\nX-Rate-Limit-Reset: 0.01\r\nContent-Length: 0\r\n\r\n")
						continue
					case tc.ok && total == 4:
						_, _ = io.WriteString(c, okResponse)
						continue
					}
					return // read in full, never answered
				}
			})
			c, rec := newCaller(t, Options{Tries: tc.tries, RateLimitHeaders: []string{"X-Rate-Limit-Reset"}})
			url := "http://" + srv.ln.Addr().String() + "/message"
			if r := c.Call(context.Background(), url, []byte(`{}`)); !r.OK {
				t.Fatalf("first call: %+v", r)
			}
			r := c.Call(context.Background(), url, []byte(`{"data":1}`))
			if r.OK != tc.ok || r.Unavailable == tc.ok {
				t.Fatalf("second call: %+v", r)
			}
			if got := srv.requests.Load() - 1; got != tc.want {
				t.Errorf("the service received %d POSTs of the second call, want %d (sleeps %v)", got, tc.want, rec.got())
			}
			if got := len(rec.got()); got != tc.tries-1 {
				t.Errorf("%d waits, want %d", got, tc.tries-1)
			}
		})
	}
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// publisher posts bench messages to mako's POST /publish over keep-alive
// connections.
type publisher struct {
	client  *http.Client
	url     string
	channel string
	size    int
}

func newPublisher(api, channel string, size, conns int) *publisher {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	return &publisher{
		client:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
		url:     strings.TrimRight(api, "/") + "/publish",
		channel: channel,
		size:    size,
	}
}

// body builds a published message whose data carries the poster id, its
// sequence number and the send time, padded so the whole body is about
// p.size bytes.
func (p *publisher) body(dst []byte, poster int, seq int64, now time.Time) []byte {
	dst = append(dst[:0], `{"subscription":`...)
	dst = strconv.AppendQuote(dst, p.channel)
	dst = append(dst, `,"data":{"mb_p":`...)
	dst = strconv.AppendInt(dst, int64(poster), 10)
	dst = append(dst, `,"mb_seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"mb_ts":`...)
	dst = strconv.AppendInt(dst, now.UnixNano(), 10)
	dst = append(dst, `,"pad":"`...)
	const tail = `"}}`
	for len(dst)+len(tail) < p.size {
		dst = append(dst, 'x')
	}
	return append(dst, tail...)
}

// post publishes one message; buf is the caller's reusable body buffer.
func (p *publisher) post(ctx context.Context, buf *[]byte, poster int, seq int64) error {
	*buf = p.body(*buf, poster, seq, time.Now())
	req, err := http.NewRequestWithContext(ctx, "POST", p.url, bytes.NewReader(*buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("publish: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

func (p *publisher) close() { p.client.CloseIdleConnections() }

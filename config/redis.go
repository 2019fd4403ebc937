package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Address resolves where to reach Redis. An explicitly set url wins and
// host/port/db are then ignored; without a url, host/port/db (defaults
// localhost, 6379, 0) are used, which is the same as the documented default
// url redis://localhost:6379/0. The password comes only from the url's user
// info (redis://:PASSWORD@host or redis://USER:PASSWORD@host).
//
// For redis:// and rediss:// addr is host:port (port 6379 when omitted) and db
// comes from the path (/N) or the query (?db=N). For unix:// addr is the
// socket path and db comes from the query. Use TLS to tell rediss:// apart.
func (r *Redis) Address() (addr string, db int, password string, err error) {
	if r.URL == "" {
		return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), r.DB, "", nil
	}
	addr, db, password, reason := parseRedisURL(r.URL)
	if reason != "" {
		return "", 0, "", fmt.Errorf("redis url %s: %s", displayURL(r.URL), reason)
	}
	return addr, db, password, nil
}

// TLS reports whether the url asks for TLS (rediss://).
func (r *Redis) TLS() bool {
	return strings.HasPrefix(strings.ToLower(r.URL), "rediss://")
}

// String is the effective url with credentials redacted, for logs.
func (r *Redis) String() string {
	if r.URL != "" {
		return Redact(r.URL)
	}
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Path: "/" + strconv.Itoa(r.DB)}
	return u.String()
}

// parseRedisURL returns a non-empty reason when s is unusable; the reason
// never repeats s, so callers control how (redacted) it is shown.
func parseRedisURL(s string) (addr string, db int, password, reason string) {
	u, err := url.Parse(s)
	if err != nil {
		return "", 0, "", "not a valid URL"
	}
	password, _ = u.User.Password()
	dbText := u.Query().Get("db")
	switch strings.ToLower(u.Scheme) {
	case "redis", "rediss":
		if u.Hostname() == "" {
			return "", 0, "", "must have a host"
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", 0, "", "port must be 1..65535"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
		if p := strings.TrimPrefix(u.Path, "/"); p != "" {
			dbText = p
		}
	case "unix":
		if u.Path == "" {
			return "", 0, "", "must have a socket path"
		}
		addr = u.Path
	default:
		return "", 0, "", "scheme must be redis, rediss or unix"
	}
	if dbText != "" {
		n, err := strconv.Atoi(dbText)
		if err != nil || n < 0 {
			return "", 0, "", "database must be a non-negative integer"
		}
		db = n
	}
	return addr, db, password, ""
}

const (
	redacted               = "xxxxx"
	unparseablePlaceholder = "<unparseable URL>"
)

// Redact replaces the user info of a URL (user:password) with "xxxxx" so the
// URL can be logged. Input that does not parse as a URL, or that looks like
// it carries credentials in a place url.Parse does not recognise, is replaced
// by a placeholder: a log line must never leak a password.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return unparseablePlaceholder
	}
	if u.User != nil {
		u.User = url.User(redacted)
		return u.String()
	}
	// "user:pass@host:6379" parses with scheme "user" and the secret in Opaque.
	if strings.Contains(u.Opaque, "@") {
		return unparseablePlaceholder
	}
	return raw
}

// displayURL shows a URL in an error message: redacted, but verbatim when it
// does not parse and cannot hold credentials, since then the raw text is
// what the operator needs to see.
func displayURL(s string) string {
	r := Redact(s)
	if r == unparseablePlaceholder && !strings.Contains(s, "@") {
		r = s
	}
	return strconv.Quote(r)
}

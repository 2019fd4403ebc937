// Package makojs holds mako.js, the browser client, and the demo page that
// uses it, embedded so that mako serves them from its binary (GET /mako.js
// and GET /demo on the API port; server/web.go).
package makojs

import _ "embed"

// Client is mako.js, an ES module (docs/client.md).
//
//go:embed mako.js
var Client []byte

// Demo is the demo page. Its one placeholder, {{WS}}, is replaced by the
// WebSocket listener's host:port before it is served.
//
//go:embed demo.html
var Demo string

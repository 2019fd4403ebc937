// Package protocol is mako's wire layer: it decodes client frames and service
// publications and encodes replies and pushed messages, byte-compatible in
// meaning with SocketShark. It does no I/O and starts no goroutines, so every
// function is safe to call from an event loop; state types (OrderState,
// ThrottleState) are not synchronised and belong to one loop.
//
// Decoding goes through goccy/go-json, except for published messages, which
// are decoded once per message on the fan-out path: a strict single-pass
// scanner (scan.go) handles well-formed ones and hands anything else to goccy,
// so error texts and corner cases stay goccy's. Encoding appends by hand to a
// caller's buffer so the hot paths (pushed messages, replies) do not allocate.
package protocol

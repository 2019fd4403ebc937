// Package protocol is mako's wire layer: it decodes client frames and service
// publications and encodes replies and pushed messages, byte-compatible in
// meaning with SocketShark. It does no I/O and starts no goroutines, so every
// function is safe to call from an event loop; state types (OrderState,
// ThrottleState) are not synchronised and belong to one loop.
//
// Decoding goes through goccy/go-json; encoding appends by hand to a caller's
// buffer so the hot paths (pushed messages, replies) do not allocate.
package protocol

// Package server is mako's WebSocket edge: a gnet v2 epoll reactor that
// speaks the SocketShark protocol.
//
// # Concurrency model
//
// Every connection belongs to one gnet event loop for its whole life, and
// its session (handshake state, frame decoder, auth fields, subscriptions,
// event queue, timers) is touched only on that loop. There is no goroutine
// per connection: reading, parsing, writing, pings and timers all run in
// loop callbacks.
//
//   - Inbound bytes are parsed in place from gnet's inbound buffer
//     (Peek … Discard): the HTTP upgrade, then RFC 6455 frames (package ws).
//     A frame is decoded once whole, except uncompressed text, which the
//     decoder takes as it arrives so that invalid UTF-8 fails at once.
//   - A session handles its client events strictly one at a time in arrival
//     order. An event that needs a service call submits it to a bounded
//     worker pool (package service); the result is posted back to the
//     session's loop and the event resumes there. Events arriving meanwhile
//     wait in the session's small queue; when it is full, parsing pauses
//     (the bytes wait in gnet's inbound buffer, up to
//     limits.max_inbound_bytes) and resumes from a loop task as it drains.
//   - Everything posted to a loop from elsewhere (service results, broker
//     acks, fan-out batches, timer ticks) goes through the loop's inbox
//     (inbox.go), a FIFO mako owns: gnet's EventLoop.Execute is not FIFO
//     past 1,024 pending tasks, so it only ever carries one "drain" per
//     loop. A drain does bounded work (chunkBudget) and re-arms; a large
//     delivery or flush resumes from its cursor, with the loop's sockets
//     and due timers served in between (the re-arm goes through a per-loop
//     wake socket, wake.go, so epoll runs between chunks). Fan-out batches beyond limits.max_loop_backlog are not queued:
//     a gap marker cuts the holders of their channels (slow consumers).
//   - Cuts (slow consumer, inbound flood) reset the socket at once; other
//     closes queue the close frame behind pending output and close the
//     socket once it has left, within ws.close_timeout (conn.go).
//   - Timers (handshake deadline, pings, re-authorization, heartbeats,
//     throttle windows, drain steps) live in one schedule per loop (a heap
//     keyed by due time on the Clock's monotonic reading, so wall-clock
//     steps move no timer). One process-wide ticker posts "run due timers" to a loop only
//     when that loop has something due, so an idle server does not wake.
//   - Published messages reach a loop through pubsub.Hub: one fan-out worker
//     per channel hash decodes a message once and posts it once to each loop
//     holding the channel; the loop encodes it once per extra-fields variant
//     and writes the shared frame to each subscriber after its filter, order
//     and throttle checks (whose state is loop-owned).
//
// # Where the hot paths are
//
//   - conn.go: gnet callbacks, the upgrade, frame parsing in place, writes.
//   - session.go, events.go: a session's event queue and the client events
//     (auth, subscribe, message, unsubscribe, ping) with their callbacks.
//   - fanout.go: published messages on a loop (checks, encoding, coalesced
//     writes); subscription.go: a subscription's state and timers.
//   - inbox.go: the loop's ordered, bounded task queue and its drain.
//   - loop.go, timer.go: per-loop index and schedule; server.go: start-up,
//     shutdown, the ticker; api.go: publish/health/metrics HTTP.
//
// Goroutines in this package are per process (the ticker, the API server) or
// per in-flight service call (bounded by the pool), never per connection or
// per subscription.
package server

// Package bench is mako's load harness. It treats mako as a black box: it
// speaks WebSocket to the edge and HTTP to the API, nothing else.
//
// A run spreads its client connections over several worker processes (one
// process may hold at most ~19,000 sockets here) and several local source
// addresses (each gives ~28,000 ephemeral ports). Workers are this same
// program started with WorkerEnv set; they report to the parent in JSON lines
// on stdout and take commands in JSON lines on stdin, whose end stops them.
package bench

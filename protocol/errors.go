package protocol

// Error strings sent to clients. They are part of the wire contract: clients
// written for SocketShark match on them, so they must stay byte-identical.
const (
	ErrInvalidEvent          = "Messages must be JSON and contain an event field."
	ErrEventNotFound         = "Event not found."
	ErrAuthMethodUnsupported = "Authentication method unsupported."
	ErrMustSpecifyTicket     = "Must specify ticket."
	ErrAuthFailed            = "Authentication failed."
	ErrAuthRequired          = "Authentication required."
	ErrUnauthorized          = "Unauthorized."
	ErrInvalidSubscription   = "Invalid subscription format."
	ErrInvalidService        = "Invalid service."
	ErrAlreadySubscribed     = "Already subscribed."
	ErrSubscriptionNotFound  = "Subscription does not exist."
	ErrServiceUnavailable    = "Service unavailable."
	ErrUnhandled             = "Unhandled exception."
	// ErrRateLimited is mako's own (SocketShark has no event rate limit):
	// the event came faster than limits.client_events_per_second allows.
	ErrRateLimited = "Rate limit exceeded."
)

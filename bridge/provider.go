package bridge

import (
	"context"
	"time"
)

// Provider sends SMS through one provider API. Implementations live in
// providers/<name>; each is safe for concurrent use.
type Provider interface {
	// Name is the configured name of this provider instance.
	Name() string
	// Send submits one request. On success it returns exactly one Result
	// per req.To, in order; a Result with a non-nil Err failed that
	// recipient only. A non-nil error fails the whole request; it should
	// be a *Error saying whether it is temporary.
	Send(ctx context.Context, req *SendRequest) ([]Result, error)
}

// SendRequest is what a provider is asked to send: one text (or template)
// from one sender to one or more recipients.
type SendRequest struct {
	MessageID string // our message id, for logs and idempotency
	Sender    string // sender ID or number; "" = provider default / bulk
	Text      string // the SMS text; with Template set, an explicit override or ""
	Template  string
	Params    map[string]string
	SendAt    time.Time // zero: now; otherwise the provider schedules natively
	To        []string  // E.164 numbers or phonebook targets (see Phonebook)
}

// Result is the outcome for one recipient of a SendRequest.
type Result struct {
	ProviderID string // the provider's id for this SMS
	Err        error  // nil: accepted by the provider
	// Cost is the price the provider reported for this SMS, as ParseCost
	// returns it; "" if it reported none.
	Cost string
	Info map[string]string // provider details kept in the log (status, cost, ...)
}

// The interfaces below are optional; the bridge discovers them by type
// assertion so that a minimal provider only needs Send.

// RecipientChecker refuses numbers a provider can never reach, so they are
// refused at RCPT time instead of failing later. number is E.164 or a
// phonebook target.
type RecipientChecker interface {
	CheckRecipient(to string) error
}

// RequestChecker refuses content that a provider would never accept (sender
// ID form, length, template use), before the message is accepted.
// req.To is empty when called.
type RequestChecker interface {
	CheckRequest(req *SendRequest) error
}

// Batcher says how many recipients one Send may carry (1 if not implemented).
type Batcher interface {
	MaxBatch() int
}

// Canceller cancels a natively scheduled send at the provider.
type Canceller interface {
	Cancel(ctx context.Context, providerID string) error
}

// NumberOwner is a provider that knows the numbers it receives SMS on
// (its configured 2-way numbers). An SMS another provider reports as
// sent to one of them is not that provider's to speak for: Receive files
// it apart and routes it to nobody.
type NumberOwner interface {
	Numbers() []string
}

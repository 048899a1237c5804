package bridge

import (
	"errors"
	"fmt"
	"time"
)

// Reason is a machine-readable cause of a refusal or failure. The front ends
// map reasons to SMTP replies and HTTP statuses in one place each.
type Reason string

const (
	ReasonBadDomain         Reason = "bad_domain"          // not one of our domains (no relay)
	ReasonBadNumber         Reason = "bad_number"          // not a valid phone number
	ReasonNoRoute           Reason = "no_route"            // no provider can reach the number
	ReasonUnknownAccount    Reason = "unknown_account"     // sender is not a configured account
	ReasonSenderNotAllowed  Reason = "sender_not_allowed"  // sender ID not the account's, or not accepted by the provider
	ReasonEmpty             Reason = "empty"               // nothing left to send
	ReasonTooLong           Reason = "too_long"            // more segments/characters than allowed
	ReasonTemplateUnknown   Reason = "template_unknown"    // template/pattern not usable
	ReasonTooManyRecipients Reason = "too_many_recipients" // over max_recipients
	ReasonInvalid           Reason = "invalid"             // any other malformed input
	ReasonRateLimited       Reason = "rate_limited"        // over a rate limit (temporary)
	ReasonOverLimit         Reason = "over_limit"          // more at once than a rate limit ever allows (permanent)
	ReasonStoreUnavailable  Reason = "store_unavailable"   // cannot persist (temporary)
	ReasonProviderRejected  Reason = "provider_rejected"   // provider refused the message for good
	ReasonProviderAuth      Reason = "provider_auth"       // provider refused our credentials
	ReasonProviderDown      Reason = "provider_unavailable"
	ReasonExpired           Reason = "expired" // older than queue.max_age
	ReasonCancelled         Reason = "cancelled"
	ReasonNotFound          Reason = "not_found"
	// An idempotency key reused with a different request.
	ReasonIdempotencyConflict Reason = "idempotency_conflict"
)

// Error is an error that knows whether it is temporary, why it happened
// (Reason) and, for input errors, which field was wrong. Errors of any other
// type are treated as temporary: retrying an unknown failure is safer than
// dropping a message.
type Error struct {
	Reason     Reason
	Temp       bool
	Field      string        // input field at fault ("to", "sender", ...), if any
	Msg        string        // human-readable, safe to show to the client
	RetryAfter time.Duration // provider-requested delay, if any
	Err        error         // wrapped cause, never shown to clients
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Err != nil:
		return e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return e.Msg
	case e.Err != nil:
		return string(e.Reason) + ": " + e.Err.Error()
	default:
		return string(e.Reason)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool { return e.Temp }

// Permanent returns a permanent *Error.
func Permanent(reason Reason, field, format string, args ...any) *Error {
	return &Error{Reason: reason, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Temporary returns a temporary *Error wrapping err.
func Temporary(reason Reason, err error, format string, args ...any) *Error {
	return &Error{Reason: reason, Temp: true, Msg: fmt.Sprintf(format, args...), Err: err}
}

// IsTemporary reports whether err may go away on retry. Errors that do not
// say otherwise are temporary.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return true
}

// ReasonOf returns the Reason of the first *Error in err's chain, or "".
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// RetryAfterOf returns the delay a provider asked for, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrDuplicateKey is returned by Store.Enqueue for an idempotency key the
// account already used.
var ErrDuplicateKey = &Error{Reason: ReasonInvalid, Field: "Idempotency-Key", Msg: "idempotency key already used"}

// ErrNotFound is returned by stores for unknown ids.
var ErrNotFound = &Error{Reason: ReasonNotFound, Msg: "not found"}

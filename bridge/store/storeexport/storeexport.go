// Package storeexport holds the records one store exports and another
// imports (`smsbridge migrate-store`): what a message and its recipients
// are as stored, beyond what bridge.Message and bridge.Recipient carry. One
// set of types, so that the exporting and the importing store cannot
// disagree on a field and the command copies pages without converting
// them. A column added to messages or recipients that the stores keep
// gets a field here (or in the bridge type), read by the export and
// written by the import.
package storeexport

import (
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Message is one stored message with its recipients.
type Message struct {
	// Message has every field as stored, IdempotencyKey and RequestDigest
	// included; Message.Recipients is nil (an import ignores it): see
	// Recipients.
	Message    *bridge.Message
	Recipients []Recipient
}

// Recipient is a recipient with what bridge.Recipient does not carry but
// the store keeps.
type Recipient struct {
	bridge.Recipient
	Info         map[string]string // the provider details of its last outcome
	Conversation string            // the conversation it is filed under; "" if none yet
	// Polled is when its delivery report was last asked for (see
	// bridge.Conversations.Outstanding); zero if never.
	Polled time.Time
	// Claimed is set when a dispatcher took the recipient and recorded no
	// outcome: its send was in flight when the daemon stopped, and its
	// NextAttempt is the end of that claim's lease.
	Claimed bool
}

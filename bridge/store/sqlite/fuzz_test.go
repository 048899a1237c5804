package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsbridge/smsbridge/bridge"
)

// FuzzRoundTrip stores messages with arbitrary field contents and reads
// them back: whatever bytes a mail brought in (NULs, invalid UTF-8, SQL
// quotes) come out unchanged. Params and the provider list are JSON, which
// holds only valid UTF-8; they come from decoded text and the
// configuration, so only valid UTF-8 is tried there.
func FuzzRoundTrip(f *testing.F) {
	f.Add("שלום, מה שלומך?", "Subject: =?UTF-8?B?16nXnNeV150=?=\r\n", "name", "سلام ۱۲۳", "+972501234567", int64(1_900_000_000_123))
	f.Add("", "", "", "", "", int64(0))
	f.Add("a\x00b\xff'; DROP TABLE messages; --", "X: \x00\r\n", "k\"", "v\\\n", "phonebook:1:2,3", int64(-1))
	f.Add("😀", "\xc3\x28", "{}", "[]", "+1", int64(1))
	s := openTest(f, filepath.Join(f.TempDir(), "q.db"))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, text, headers, key, value, to string, ms int64) {
		m := &bridge.Message{
			ID: bridge.NewID(), Channel: bridge.ChannelSMTP, Account: key, EnvelopeFrom: value,
			MailMessageID: to, ReplyTo: text, Headers: headers, Sender: value, Text: text, Template: key,
			SendAt: time.UnixMilli(ms), Created: time.UnixMilli(ms / 2),
			Recipients: []bridge.Recipient{{To: to, Provider: key,
				State: bridge.StateQueued, NextAttempt: time.UnixMilli(ms), Error: text}},
		}
		if utf8.ValidString(key) && utf8.ValidString(value) {
			m.Params = map[string]string{key: value}
			m.Recipients[0].Providers = []string{key, value}
		}
		if err := s.Enqueue(ctx, m); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		got, err := s.Message(ctx, m.ID)
		if err != nil {
			t.Fatalf("Message: %v", err)
		}
		want := *m
		// The Unix epoch itself is stored as "no time".
		for _, p := range []*time.Time{&want.SendAt, &want.Created, &want.Recipients[0].NextAttempt} {
			if p.UnixMilli() == 0 {
				*p = time.Time{}
			} else {
				*p = p.UTC()
			}
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, &want)
		}
	})
}

package smtpin_test

import (
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/smtpin"
)

var replyAcct = &bridge.Account{Name: "ops", Emails: []string{"*@localhost", "boss@corp.example"}, ReplyTo: []string{"*@partner.example"}}

// ReplyAddress takes the first of Reply-To, From and the envelope sender
// that the account allows; a header naming anyone else is passed over.
func TestReplyAddress(t *testing.T) {
	for _, tt := range []struct{ header, envelope, want string }{
		{"Reply-To: desk@partner.example\r\nFrom: ops@localhost\r\n", "ops@localhost", "desk@partner.example"},
		{"Reply-To: attacker@evil.example\r\nFrom: Boss <boss@corp.example>\r\n", "ops@localhost", "boss@corp.example"},
		{"Reply-To: attacker@evil.example\r\nFrom: mallory@evil.example\r\n", "ops@localhost", "ops@localhost"},
		{"Reply-To: \"x\" <ATTACKER@Partner.Example.evil>\r\n", "OPS@LOCALHOST", "OPS@LOCALHOST"},
		{"From: boss@CORP.example\r\n", "", "boss@CORP.example"},
		{"Reply-To: not an address\r\n", "ops@localhost", "ops@localhost"},
		// An authenticated session's envelope that is not the account's
		// (refused at MAIL elsewhere) gives no reply address at all.
		{"From: mallory@evil.example\r\n", "victim@elsewhere.example", ""},
	} {
		m, err := smtpin.ReadMail(strings.NewReader(tt.header+"Subject: x\r\n\r\nhi\r\n"), smtpin.Limits{})
		if err != nil {
			t.Fatalf("%q: %v", tt.header, err)
		}
		if got := m.ReplyAddress(tt.envelope, replyAcct.MayReplyTo); got != tt.want {
			t.Errorf("%q, envelope %q: ReplyAddress = %q, want %q", tt.header, tt.envelope, got, tt.want)
		}
	}
}

// Whatever the headers say, the reply address is "" or one the account
// allows.
func FuzzReplyAddress(f *testing.F) {
	f.Add("Reply-To: desk@partner.example\r\n", "ops@localhost")
	f.Add("Reply-To: a@evil.example, desk@partner.example\r\nFrom: =?utf-8?q?B=C3=B6ss?= <boss@corp.example>\r\n", "x@evil.example")
	f.Add("From: \"ops@localhost\" <evil@evil.example>\r\n", "")
	f.Fuzz(func(t *testing.T, header, envelope string) {
		m, err := smtpin.ReadMail(strings.NewReader(header+"\r\n\r\nhi\r\n"), smtpin.Limits{})
		if err != nil {
			return
		}
		if got := m.ReplyAddress(envelope, replyAcct.MayReplyTo); got != "" && !replyAcct.MayReplyTo(got) {
			t.Errorf("ReplyAddress = %q, which the account does not allow", got)
		}
	})
}

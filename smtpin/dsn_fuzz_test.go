package smtpin

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
)

// FuzzDSNParameters: whatever go-smtp hands over, what is accepted is
// within its bounds (ENVID printable ASCII of at most 100 characters;
// ORCPT of a known type, valid UTF-8 without control characters, at most
// 500 bytes of address; NOTIFY never mixed with NEVER), and what is
// refused is a 501 5.5.4 naming the parameter.
func FuzzDSNParameters(f *testing.F) {
	f.Add("QQ314159", "FULL", "SUCCESS,DELAY", "rfc822", "a@example.com")
	f.Add(strings.Repeat("x", 101), "HDRS", "NEVER", "utf-8", "b\u00e9@example.com")
	f.Add("a b", "x", "NEVER,FAILURE", "x400", "")
	f.Add("", "", "", "UTF-8", "a\x00b")
	f.Fuzz(func(t *testing.T, envid, ret, notify, typ, addr string) {
		check := func(err *smtp.SMTPError, params ...string) {
			if err.Code != 501 || err.EnhancedCode != (smtp.EnhancedCode{5, 5, 4}) {
				t.Fatalf("refused with %d %v", err.Code, err.EnhancedCode)
			}
			for _, p := range params {
				if strings.HasPrefix(err.Message, p+": ") {
					return
				}
			}
			t.Fatalf("refusal %q names none of %v", err.Message, params)
		}
		id, r, err := mailDSN(&smtp.MailOptions{EnvelopeID: envid, Return: smtp.DSNReturn(ret)})
		if err != nil {
			check(err, "ENVID", "RET")
		} else {
			if len(id) > bridge.MaxEnvelopeID || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
				t.Fatalf("ENVID %q accepted", id)
			}
			if r != "" && r != bridge.ReturnFull && r != bridge.ReturnHeaders {
				t.Fatalf("RET %q accepted", r)
			}
		}
		var words []smtp.DSNNotify
		if notify != "" {
			for _, w := range strings.Split(notify, ",") {
				words = append(words, smtp.DSNNotify(w))
			}
		}
		n, orcpt, err := rcptDSN(&smtp.RcptOptions{Notify: words, OriginalRecipientType: smtp.DSNAddressType(typ), OriginalRecipient: addr})
		if err != nil {
			check(err, "NOTIFY", "ORCPT")
			return
		}
		if n&bridge.NotifyNever != 0 && n != bridge.NotifyNever {
			t.Fatalf("NOTIFY %v accepted", n)
		}
		if n.String() != "" {
			if back, err := bridge.ParseNotify(strings.Split(n.String(), ",")); err != nil || back != n {
				t.Fatalf("NOTIFY %v does not read back: %v, %v", n, back, err)
			}
		}
		if orcpt == "" {
			return
		}
		kind, a, ok := strings.Cut(orcpt, ";")
		if !ok || (kind != "rfc822" && kind != "utf-8") || a == "" || len(a) > bridge.MaxORCPT || !utf8.ValidString(a) ||
			strings.ContainsFunc(a, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			t.Fatalf("ORCPT %q accepted", orcpt)
		}
	})
}

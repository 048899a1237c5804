package smtpin

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/smsbridge/smsbridge/bridge"
)

// The DSN extension (RFC 3461). go-smtp parses the parameters and decodes
// their xtext (EnableDSN); what it lets through is checked again here,
// with the lengths capped, since every value is stored and echoed in the
// notifications. A bad value is a 501 5.5.4 naming the parameter.

// dsnError is the reply to a DSN parameter that cannot be accepted.
func dsnError(param, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4},
		Message: param + ": " + fmt.Sprintf(format, args...)}
}

// mailDSN checks MAIL's ENVID and RET and returns them as stored.
func mailDSN(opts *smtp.MailOptions) (envid string, ret bridge.DSNReturn, err *smtp.SMTPError) {
	if opts == nil {
		return "", "", nil
	}
	switch opts.Return {
	case "":
	case smtp.DSNReturnFull:
		ret = bridge.ReturnFull
	case smtp.DSNReturnHeaders:
		ret = bridge.ReturnHeaders
	default:
		return "", "", dsnError("RET", "must be FULL or HDRS")
	}
	if err := checkEnvelopeID(opts.EnvelopeID); err != nil {
		return "", "", err
	}
	return opts.EnvelopeID, ret, nil
}

// checkEnvelopeID: ENVID is printable US-ASCII once xtext-decoded, at
// most bridge.MaxEnvelopeID characters (RFC 3461 §4.4).
func checkEnvelopeID(id string) *smtp.SMTPError {
	if len(id) > bridge.MaxEnvelopeID {
		return dsnError("ENVID", "longer than %d characters", bridge.MaxEnvelopeID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < '!' || c > '~' {
			return dsnError("ENVID", "not printable US-ASCII")
		}
	}
	return nil
}

// rcptDSN checks RCPT's NOTIFY and ORCPT and returns them as stored: the
// NOTIFY keywords as bridge.Notify (0 when absent) and ORCPT as
// "<type>;<decoded address>" ("" when absent).
func rcptDSN(opts *smtp.RcptOptions) (bridge.Notify, string, *smtp.SMTPError) {
	if opts == nil {
		return 0, "", nil
	}
	words := make([]string, len(opts.Notify))
	for i, n := range opts.Notify {
		words[i] = string(n)
	}
	notify, err := bridge.ParseNotify(words)
	if err != nil {
		return 0, "", dsnError("NOTIFY", "%s", err)
	}
	orcpt, serr := checkORCPT(string(opts.OriginalRecipientType), opts.OriginalRecipient)
	if serr != nil {
		return 0, "", serr
	}
	return notify, orcpt, nil
}

// checkORCPT: an address type of rfc822 (printable US-ASCII) or utf-8
// (valid UTF-8, no control characters), and an address of at most
// bridge.MaxORCPT bytes.
func checkORCPT(typ, addr string) (string, *smtp.SMTPError) {
	if typ == "" && addr == "" {
		return "", nil
	}
	if addr == "" {
		return "", dsnError("ORCPT", "no address")
	}
	if len(addr) > bridge.MaxORCPT {
		return "", dsnError("ORCPT", "longer than %d characters", bridge.MaxORCPT)
	}
	switch {
	case strings.EqualFold(typ, string(smtp.DSNAddressTypeRFC822)):
		for i := 0; i < len(addr); i++ {
			if c := addr[i]; c < '!' || c > '~' {
				return "", dsnError("ORCPT", "an rfc822 address must be printable US-ASCII")
			}
		}
		return "rfc822;" + addr, nil
	case strings.EqualFold(typ, string(smtp.DSNAddressTypeUTF8)):
		if !utf8.ValidString(addr) || strings.ContainsFunc(addr, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
			return "", dsnError("ORCPT", "a utf-8 address must be valid UTF-8 without spaces or control characters")
		}
		return "utf-8;" + addr, nil
	}
	return "", dsnError("ORCPT", "address type must be rfc822 or utf-8")
}

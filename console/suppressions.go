package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/smsbridge/smsbridge/bridge"
)

// suppressionLimit is how many suppressions the page lists, newest first;
// a search by phone finds the others.
const suppressionLimit = 200

// source is what the suppression history records as the console's doing.
const source = "console"

type suppressionsData struct {
	Phone, AccountFilter string
	List                 []bridge.Suppression
	Full                 bool     // the list stopped at suppressionLimit
	Numbers              []string // the account's sender IDs, for the add form
}

// suppressions lists the suppressions the account may see, with the form
// to add one: what GET /v1/suppressions lists, through the same
// bridge.ListSuppressions.
func (c *Console) suppressions(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := page{Title: "Opt-outs"}
	// The notice after a change names the phone, which must be one (the
	// redirect's E.164): a link cannot make the page say anything else.
	switch {
	case e164(q.Get("added")):
		p.Notice = "Added " + q.Get("added") + "."
		if n, _ := strconv.Atoi(q.Get("cancelled")); n > 0 {
			p.Notice += " " + strconv.Itoa(n) + " queued SMS to it cancelled."
		}
	case e164(q.Get("removed")):
		p.Notice = "Removed " + q.Get("removed") + ": SMS to it are accepted again (unless another suppression stops them)."
	}
	c.showSuppressions(w, r, s, http.StatusOK, p)
}

func (c *Console) showSuppressions(w http.ResponseWriter, r *http.Request, s *session, status int, p page) {
	q := r.URL.Query()
	d := suppressionsData{Phone: strings.TrimSpace(q.Get("phone")), AccountFilter: strings.TrimSpace(q.Get("account")),
		Numbers: s.acct.SenderIDs}
	f := bridge.SuppressionFilter{Phone: d.Phone, Limit: suppressionLimit}
	if s.acct.Admin {
		f.Account = d.AccountFilter
	}
	list, err := c.bridge.ListSuppressions(r.Context(), s.acct, f)
	if err != nil {
		if bridge.ReasonOf(err) != bridge.ReasonBadNumber && bridge.ReasonOf(err) != bridge.ReasonInvalid {
			c.problem(w, r, s, err)
			return
		}
		// A search that is no phone number: said beside the box.
		_, p.Error = explain(err)
		status = http.StatusUnprocessableEntity
	}
	d.List, d.Full = list, len(list) == suppressionLimit
	p.Data = d
	c.render(w, r, status, "suppressions", s, p)
}

// suppress adds a suppression, as POST /v1/suppressions does, through
// bridge.Suppress: an account adds its own (from one of its numbers or
// all), an admin any account's or everyone's. Refusals are shown beside
// the form, with what was typed.
func (c *Console) suppress(w http.ResponseWriter, r *http.Request, s *session) {
	form := map[string]string{"phone": r.PostFormValue("phone"), "number": r.PostFormValue("number"),
		"account": r.PostFormValue("account"), "reason": r.PostFormValue("reason")}
	if !s.acct.Admin {
		form["account"] = ""
	}
	var err error
	var x *bridge.Suppression
	var n int
	if strings.TrimSpace(form["phone"]) == "" {
		err = bridge.Permanent(bridge.ReasonInvalid, "phone", "Phone number: required.")
	} else {
		x, n, err = c.bridge.Suppress(r.Context(), s.acct, strings.TrimSpace(form["account"]), form["phone"],
			strings.TrimSpace(form["number"]), form["reason"], source)
	}
	if err != nil {
		c.refuseForm(w, r, s, err, form)
		return
	}
	c.log.Info("suppression added", "channel", "console", "account", s.acct.Name, "scope", string(x.Scope()), "cancelled", n)
	http.Redirect(w, r, Prefix+"suppressions?"+url.Values{"added": {x.Phone}, "cancelled": {strconv.Itoa(n)}}.Encode(),
		http.StatusSeeOther)
}

// unsuppress removes the suppression a row of the list shows, as DELETE
// /v1/suppressions does, through bridge.Unsuppress: an account may not
// remove one of everyone's.
func (c *Console) unsuppress(w http.ResponseWriter, r *http.Request, s *session) {
	phone := r.PostFormValue("phone")
	err := c.bridge.Unsuppress(r.Context(), s.acct, r.PostFormValue("account"), phone, r.PostFormValue("number"), "", source)
	if err != nil {
		c.refuseForm(w, r, s, err, nil)
		return
	}
	c.log.Info("suppression removed", "channel", "console", "account", s.acct.Name)
	http.Redirect(w, r, Prefix+"suppressions?"+url.Values{"removed": {phone}}.Encode(), http.StatusSeeOther)
}

// refuseForm shows the list again with err beside the form, the field
// it names marked, and what was typed kept.
func (c *Console) refuseForm(w http.ResponseWriter, r *http.Request, s *session, err error, form map[string]string) {
	status, msg := explain(err)
	if status >= 500 {
		c.log.Warn("console request failed", "path", r.URL.Path, "err", err)
	}
	if form == nil {
		form = map[string]string{}
	}
	var be *bridge.Error
	if errors.As(err, &be) {
		form["field"] = be.Field
	}
	c.showSuppressions(w, r, s, status, page{Title: "Opt-outs", Error: msg, Form: form})
}

// e164 reports whether s is a phone number as the bridge stores them.
func e164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

package ippanel

import "github.com/smsbridge/smsbridge/bridge"

// SchedulesNatively tells the bridge which future sends to hand over at
// once: webservice and phonebook sends carry send_time; the pattern
// document has none, so the bridge holds pattern sends until due.
func (p *Provider) SchedulesNatively(req *bridge.SendRequest) bool { return req.Template == "" }

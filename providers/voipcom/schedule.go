package voipcom

import "github.com/smsbridge/smsbridge/bridge"

// SchedulesNatively tells the bridge to hand future sends over at once:
// voip-communications holds them itself (delivery_date) and charges only
// when it sends, so the request is validated now instead of at send time.
func (p *Provider) SchedulesNatively(*bridge.SendRequest) bool { return true }

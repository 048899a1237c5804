package voipcom

// SchedulesNatively tells the bridge to hand future sends over at once:
// voip-communications holds them itself (delivery_date) and charges only
// when it sends, so the request is validated now instead of at send time.
func (p *Provider) SchedulesNatively() bool { return true }

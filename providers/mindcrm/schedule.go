package mindcrm

import "github.com/smsbridge/smsbridge/bridge"

// SchedulesNatively tells the bridge to hand future sends over at once:
// MindCRM schedules them itself from the date and time parameters.
func (p *Provider) SchedulesNatively(*bridge.SendRequest) bool { return true }

package mindcrm

// SchedulesNatively tells the bridge to hand future sends over at once:
// MindCRM schedules them itself from the date and time parameters.
func (p *Provider) SchedulesNatively() bool { return true }

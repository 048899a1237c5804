//go:build race

package smtpin

// raceEnabled: the race detector changes what allocates, so allocation
// bounds are not checked under it.
const raceEnabled = true

//go:build !race

package smtpin

const raceEnabled = false

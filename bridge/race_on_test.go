//go:build race

package bridge_test

// raceEnabled: see race_off_test.go.
const raceEnabled = true

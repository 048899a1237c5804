//go:build !race

package bridge_test

// raceEnabled reports whether the tests run under the race detector, which
// makes the SQLite driver (C translated to Go, pointer-checked under -race)
// some ten times slower: TestDispatchModel runs fewer seeds then.
const raceEnabled = false

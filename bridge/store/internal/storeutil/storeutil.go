// Package storeutil holds what the SQLite and PostgreSQL stores share:
// the checks and preparation of what they are asked to record, the
// filing under conversations, reading embedded migrations, the time
// encoding, and the columns and decoding of the rows both read alike.
// Only the SQL dialects, and what each database needs of its own
// (SQLite's single writer, PostgreSQL's text columns and lock order),
// differ between stores.
package storeutil

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
)

// Migration is one schema change file, migrations/NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads dir of fsys: files numbered from 1 without gaps
// (NNNN_name.sql), in order. A file is never edited once released: a
// change is a new file.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries { // ReadDir sorts by name
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: want a name starting %04d_", e.Name(), len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}

// Millis stores times as unix milliseconds in UTC; 0 is the zero
// time.Time (which as unix milliseconds would be a large negative number
// no real time takes, but 0 reads better in the database). The Unix epoch
// itself therefore reads back as the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis reverses Millis.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// NonNil makes an empty route encode as [] rather than null.
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// StateOrQueued is the state a recipient is stored with.
func StateOrQueued(s bridge.State) bridge.State {
	if s == "" {
		return bridge.StateQueued
	}
	return s
}

// Notify reads a recipient's stored NOTIFY (bridge.Notify.String). A value
// it cannot read (written by a later version) is unset: failures only.
func Notify(s string) bridge.Notify {
	if s == "" {
		return 0
	}
	n, err := bridge.ParseNotify(strings.Split(s, ","))
	if err != nil {
		return 0
	}
	return n
}

// MaxReportJobs bounds the recipients ReportJobs reads for one report.
const MaxReportJobs = 1000

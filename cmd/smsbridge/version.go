package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by scripts/release and scripts/deb (scripts/lib/build.sh) with
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// A plain `go build` leaves them empty and the build information that
// the go command records (module version, vcs.revision, vcs.time) is used
// instead, so both kinds of binary say what they were built from.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion is what `smsbridge version` prints.
type buildVersion struct {
	Version string // module version: a tag (v1.2.3), a pseudo-version or "(devel)"
	Commit  string // full revision, "+dirty" when built from a modified tree
	Date    string // the commit's time (RFC 3339): builds of one commit agree
	Go      string // toolchain, GOOS/GOARCH
}

func (v buildVersion) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", v.Version, v.Commit, v.Date, v.Go)
}

func currentVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(version, commit, date, bi)
}

// resolveVersion takes each field from the -ldflags value when it is set
// and from the build information otherwise; what neither knows is said
// plainly rather than left blank.
func resolveVersion(ver, rev, when string, bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: ver, Commit: rev, Date: when,
		Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		if v.Commit == "" {
			if v.Commit = buildSetting(bi, "vcs.revision"); v.Commit != "" && buildSetting(bi, "vcs.modified") == "true" {
				v.Commit += "+dirty"
			}
		}
		if v.Date == "" {
			v.Date = buildSetting(bi, "vcs.time")
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.Date == "" {
		v.Date = "unknown"
	}
	return v
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	goPlatform := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	fromGit := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/smsbridge/smsbridge", Version: "v0.0.0-20261204102416-a49a13455401"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "a49a13455401495d899322345fd871bf594ff708"},
			{Key: "vcs.time", Value: "2026-12-04T10:24:16Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261204102416-a49a13455401+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "a49a13455401495d899322345fd871bf594ff708"},
			{Key: "vcs.time", Value: "2026-12-04T10:24:16Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	noVCS := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}

	for _, tc := range []struct {
		name                    string
		ver, rev, when          string
		bi                      *debug.BuildInfo
		wantVer, wantRev, when2 string
	}{
		{"ldflags win over build info", "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2027-01-02T03:04:05Z", fromGit,
			"v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2027-01-02T03:04:05Z"},
		{"build info of a clean checkout", "", "", "", fromGit,
			"v0.0.0-20261204102416-a49a13455401", "a49a13455401495d899322345fd871bf594ff708", "2026-12-04T10:24:16Z"},
		{"a modified tree is marked", "", "", "", dirty,
			"v0.0.0-20261204102416-a49a13455401+dirty", "a49a13455401495d899322345fd871bf594ff708+dirty", "2026-12-04T10:24:16Z"},
		{"version stamped, the rest from build info", "v2.0.0", "", "", fromGit,
			"v2.0.0", "a49a13455401495d899322345fd871bf594ff708", "2026-12-04T10:24:16Z"},
		{"built without VCS information", "", "", "", noVCS, "(devel)", "unknown", "unknown"},
		{"no build information at all", "", "", "", nil, "(devel)", "unknown", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveVersion(tc.ver, tc.rev, tc.when, tc.bi)
			want := buildVersion{Version: tc.wantVer, Commit: tc.wantRev, Date: tc.when2, Go: goPlatform}
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// The command prints the values -ldflags stamped, on one line that
// starts with the version so that scripts can cut it out.
func TestVersionCommand(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2027-01-02T03:04:05Z"
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "smsbridge v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, built 2027-01-02T03:04:05Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/loadtest"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-bogus"},
		{"-addr", "127.0.0.1:25", "extra"},
		{"-addr", "127.0.0.1:25", "-discard-only"},
		{"-addr", "127.0.0.1:25", "-c", "0"},
		{"-addr", "127.0.0.1:25", "-n", "-1"},
		{"-addr", "127.0.0.1:25", "-d", "0"},
		{"-addr", "127.0.0.1:25", "-size", "0"},
		{"-addr", "127.0.0.1:25", "-to-domain", ""},
		{"-addr", "127.0.0.1:25", "-rate", "-1"},
		{"-addr", "127.0.0.1:25", "-rate", "NaN"},
		{"-addr", "127.0.0.1:25", "-provider-latency", "-1s"},
		{"-addr", "127.0.0.1:25", "-pid", "-2"},
		{"-addr", "127.0.0.1:25", "-metrics", "http://x/metrics", "-scrape-every", "0s"},
		{"-discard-only", "-fake-provider", "127.0.0.1:0"},
	} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), args, &out, &errOut); code != exitUsage {
			t.Errorf("%q: exit %d; want %d", args, code, exitUsage)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote results on a usage error: %s", args, out.String())
		}
	}
}

func TestDiscardOnlyJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"-discard-only", "-n", "50", "-c", "2", "-json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep jsonReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Runs) != 1 || rep.Ratio != nil {
		t.Fatalf("report %+v; want one run and no ratio", rep)
	}
	r := rep.Runs[0]
	if r.Target != "discard" || r.Sessions != 2 || r.Sent != 50 || r.Failed != 0 || r.Rate <= 0 || r.P50 <= 0 || r.P50 > r.Max {
		t.Errorf("run %+v", r)
	}
}

// TestTargetBesideDiscard loads a second discard server as the target, so
// both rows and the ratio must come out.
func TestTargetBesideDiscard(t *testing.T) {
	addr, stop, err := loadtest.DiscardServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"-addr", addr, "-n", "40", "-c", "2", "-to-domain", "example.test"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header, 2 rows and ratio; got:\n%s", out.String())
	}
	for i, name := range []string{"discard", addr} {
		f := strings.Fields(lines[i+1])
		if len(f) != 9 || f[0] != name || f[1] != "2" || f[2] != "40" || f[8] != "0" {
			t.Errorf("row %d: %q; want %s, 2 sessions, 40 messages, 0 errors", i+1, lines[i+1], name)
		}
	}
	if !regexp.MustCompile(`^ratio: \d+\.\d\d of discard$`).MatchString(lines[3]) {
		t.Errorf("ratio line %q", lines[3])
	}
}

func TestErrorsListed(t *testing.T) {
	// Nothing listens on port 1 of localhost: every connect fails, which
	// is a result, not a usage error.
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"-addr", "127.0.0.1:1", "-discard=false", "-n", "2", "-c", "1", "-json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep jsonReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Failed != 2 || len(rep.Runs[0].Errors) == 0 {
		t.Errorf("report %+v; want one run with 2 failures listed", rep)
	}
}

// An open-loop run against a discard server, with the daemon's CPU read
// from /proc (this process stands in for it) and the fake provider
// started: the JSON carries the offered rate, the CPU per SMS, and no
// arrivals, since a discard server sends nothing on.
func TestOpenLoopObservedJSON(t *testing.T) {
	addr, stop, err := loadtest.DiscardServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"-addr", addr, "-rate", "500", "-n", "20", "-c", "2", "-json",
		"-fake-provider", "127.0.0.1:0", "-drain", "50ms", "-pid", strconv.Itoa(os.Getpid())}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep jsonReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("report %+v; want the target only (no discard run at a fixed rate)", rep)
	}
	r := rep.Runs[0]
	if r.Sent != 20 || r.Offered != 500 || r.Provider == nil || r.Provider.Missing != 20 || r.Provider.Arrived != 0 {
		t.Errorf("run %+v, accept_to_provider %+v", r, r.Provider)
	}
	if runtime.GOOS == "linux" && (r.CPUPerSMS == nil || *r.CPUPerSMS < 0) {
		t.Errorf("daemon_cpu_per_sms_us = %v; want a figure", r.CPUPerSMS)
	}
}

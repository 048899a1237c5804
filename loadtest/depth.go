package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DepthMetric is the gauge smsbridge reports its queue depth in.
const DepthMetric = "smsbridge_queue_depth"

// Depth is one reading of the queue depth.
type Depth struct {
	At    time.Duration // since the sampling started
	Value float64
}

// ScrapeDepth reads DepthMetric from a Prometheus text exposition at url.
func ScrapeDepth(ctx context.Context, client *http.Client, url string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	// The text format: the line to find is "name value".
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadtest: %s: HTTP %d", url, resp.StatusCode)
	}
	v, err := parseDepth(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("loadtest: %s: %w", url, err)
	}
	return v, nil
}

// parseDepth finds DepthMetric's value in a text exposition.
func parseDepth(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), DepthMetric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s", DepthMetric)
}

// SampleDepth scrapes url every interval until ctx ends and returns the
// readings; a failed scrape is skipped and counted.
func SampleDepth(ctx context.Context, url string, interval time.Duration) (samples []Depth, failed int) {
	client := &http.Client{Timeout: max(interval, time.Second)}
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if v, err := ScrapeDepth(ctx, client, url); err == nil {
			samples = append(samples, Depth{At: time.Since(start), Value: v})
		} else if ctx.Err() == nil {
			failed++
		}
		select {
		case <-ctx.Done():
			return samples, failed
		case <-t.C:
		}
	}
}

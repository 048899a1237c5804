package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/metrics"
	"github.com/smsbridge/smsbridge/webhook"
)

// fakeBridge stands in for *bridge.Bridge behind the interfaces webhook
// declares. Inbound SMS are deduplicated on (Provider, DedupeKey) as the
// stores do. Send methods are not used by these tests: the nil embedded
// interface makes any call to them fail loudly.
type fakeBridge struct {
	webhook.Bridge

	mu         sync.Mutex
	tokens     map[string]*bridge.Account
	inbound    []bridge.Inbound
	reports    []bridge.DeliveryReport
	receiveErr error
	reportErr  error
	reportN    int

	conversations []bridge.Conversation
	log           map[string][]bridge.LogEntry
	filters       []bridge.ConversationFilter
	listErr       error
	logLimits     []int
}

func (b *fakeBridge) AccountByToken(token string) (*bridge.Account, error) {
	if a, ok := b.tokens[token]; ok {
		return a, nil
	}
	return nil, bridge.Permanent(bridge.ReasonUnknownAccount, "", "unknown token")
}

func (b *fakeBridge) Receive(_ context.Context, in *bridge.Inbound) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.receiveErr != nil {
		return false, b.receiveErr
	}
	for _, old := range b.inbound {
		if old.Provider == in.Provider && old.DedupeKey == in.DedupeKey {
			in.ID = old.ID
			return true, nil
		}
	}
	in.ID = "in" + strconv.Itoa(len(b.inbound)+1)
	b.inbound = append(b.inbound, *in)
	return false, nil
}

func (b *fakeBridge) Report(_ context.Context, r bridge.DeliveryReport) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reportErr != nil {
		return 0, b.reportErr
	}
	b.reports = append(b.reports, r)
	return b.reportN, nil
}

func (b *fakeBridge) Conversations(_ context.Context, acct *bridge.Account, f bridge.ConversationFilter) ([]bridge.Conversation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.filters = append(b.filters, f)
	if b.listErr != nil {
		return nil, b.listErr
	}
	var out []bridge.Conversation
	for _, c := range b.conversations {
		if c.Account == acct.Name && len(out) < f.Limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (b *fakeBridge) ConversationLog(_ context.Context, acct *bridge.Account, id string, limit int) (*bridge.Conversation, []bridge.LogEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logLimits = append(b.logLimits, limit)
	for _, c := range b.conversations {
		if c.ID == id && c.Account == acct.Name {
			return &c, b.log[id], nil
		}
	}
	return nil, nil, bridge.ErrNotFound
}

// fail makes Receive and Report fail with err (nil: succeed).
func (b *fakeBridge) fail(receive, report error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.receiveErr, b.reportErr = receive, report
}

// failList makes Conversations fail with err.
func (b *fakeBridge) failList(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listErr = err
}

// asked returns the filters Conversations got and the limits
// ConversationLog got.
func (b *fakeBridge) asked() ([]bridge.ConversationFilter, []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridge.ConversationFilter(nil), b.filters...), append([]int(nil), b.logLimits...)
}

func (b *fakeBridge) stored() []bridge.Inbound {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridge.Inbound(nil), b.inbound...)
}

func (b *fakeBridge) reported() []bridge.DeliveryReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridge.DeliveryReport(nil), b.reports...)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startServer serves the HTTP API over a real listener.
func startServer(t *testing.T, b *fakeBridge, cfg webhook.Config) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	m := metrics.New(func(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, nil })
	srv := httptest.NewServer(webhook.New(b, m, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).Handler())
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

// answer is an HTTP answer with its JSON body decoded.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func do(t *testing.T, method, url, ctype, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	var err error
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("HTTP %d with Content-Type %q: %s", a.status, ct, a.raw)
	}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("HTTP %d: body is not a JSON object: %s", a.status, a.raw)
	}
	return a
}

package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/metrics"
	"github.com/smsbridge/smsbridge/webhook"
)

// The OpenAPI document describes exactly the routes the server has: no
// undocumented endpoint, no documented endpoint that does not exist.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	srv := webhook.New(nil, metrics.New(func(context.Context) (bridge.QueueStats, error) { return bridge.QueueStats{}, nil }), webhook.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	routes := srv.Routes()
	slices.Sort(documented)
	slices.Sort(routes)
	if !slices.Equal(documented, routes) {
		t.Errorf("openapi.json paths:\n  %s\nrouter:\n  %s", strings.Join(documented, "\n  "), strings.Join(routes, "\n  "))
	}
}

package config

import (
	"strings"
	"testing"
)

func TestTwoWay(t *testing.T) {
	for id, want := range map[string]string{
		"+972501234567":    "+972501234567",
		"+972 50-123-4567": "+972501234567",
		"0501234567":       "+972501234567",
		"972501234567":     "+972501234567", // international without "+"
		"3000505":          "+3000505",
		"10020":            "10020", // a short code
	} {
		if got, ok := twoWay(id, "IL"); !ok || got != want {
			t.Errorf("twoWay(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
	for _, id := range []string{"Clinic", "ACME-1", "+", "", "Info.2", "50A"} {
		if got, ok := twoWay(id, "IL"); ok {
			t.Errorf("twoWay(%q) = %q: an alphanumeric sender ID taken for a number", id, got)
		}
	}
}

func FuzzTwoWay(f *testing.F) {
	for _, s := range []string{"+972501234567", "0501234567", "Clinic", "3000505", "+ 1-2.3", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		key, ok := twoWay(id, "IL")
		if !ok {
			return
		}
		if rest := strings.TrimPrefix(key, "+"); rest == "" || strings.Trim(rest, "0123456789") != "" {
			t.Fatalf("twoWay(%q) = %q: not a number", id, key)
		}
	})
}

package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret is a configuration string that must never be printed: its String
// and MarshalText methods redact it, so logging a config struct with %v or
// through slog cannot leak it.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value either.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalText redacts the secret in any encoder (JSON, TOML, slog).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText lets TOML decode a plain string into a Secret.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Value returns the secret itself, for the one place that must send it.
func (s Secret) Value() string { return string(s) }

// ResolveSecret implements the `key` / `key_file` pair every secret has:
// exactly one may be set; a file's content is read with surrounding white
// space trimmed. key names the setting in errors ("api_password").
func ResolveSecret(key string, value Secret, file string) (Secret, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s and %s_file: set only one", key, key)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			// The path is not secret; the content never reaches the error.
			return "", fmt.Errorf("%s_file: %w", key, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s_file: %s is empty", key, file)
		}
		return Secret(v), nil
	default:
		return value, nil
	}
}

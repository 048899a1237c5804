package silence

import "net/http"

// grafanaPrefix is where Grafana serves its built-in Alertmanager's API
// (the Alertmanager-compatible API, with "grafana" as the Alertmanager's
// name).
const grafanaPrefix = "api/alertmanager/grafana/api/v2"

// NewGrafana returns a client of Grafana's built-in Alertmanager at
// baseURL ("https://grafana.example.com", or with the sub-path Grafana is
// served under): POST {baseURL}/api/alertmanager/grafana/api/v2/silences
// takes the same PostableSilence as Alertmanager and answers 202
// {"silenceID": ...}, DELETE .../api/v2/silence/{id} answers 200.
// Authenticate with a service account token (Options.Auth.Token) holding
// the silence create, write and read permissions, or a user's Basic
// credentials.
func NewGrafana(baseURL string, opt Options) (*Client, error) {
	// 200 too: Grafana answered it before it settled on 202.
	return newClient("grafana", baseURL, grafanaPrefix, opt, http.StatusAccepted, http.StatusOK)
}

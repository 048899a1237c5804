package silence

import "net/http"

// NewAlertmanager returns a client of the Prometheus Alertmanager at
// baseURL ("http://alertmanager:9093", or with the path of its
// --web.route-prefix): POST {baseURL}/api/v2/silences answers 200
// {"silenceID": ...}, DELETE {baseURL}/api/v2/silence/{id} answers 200,
// both 404 for an unknown silence (api/v2/openapi.yaml).
func NewAlertmanager(baseURL string, opt Options) (*Client, error) {
	return newClient("alertmanager", baseURL, "api/v2", opt, http.StatusOK)
}

package server

import (
	"fmt"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
)

// globalEndpoints builds the endpoints every event goes to: the enabled entries of
// ROOMHOOK_ENDPOINTS_FILE, then the URLs of ROOMHOOK_WEBHOOK_URLS the file does not list (for a
// URL in both, the file's entry, with its filter and credentials, wins).
func globalEndpoints(c Config, creds signature.Credentials) ([]endpoint.Endpoint, error) {
	urls, err := endpoint.ParseWebhookURLs(c.WebhookURLs)
	if err != nil {
		return nil, fmt.Errorf("ROOMHOOK_WEBHOOK_URLS: %w", err)
	}
	var out []endpoint.Endpoint
	if c.EndpointsFile != "" {
		if out, err = endpoint.LoadFile(c.EndpointsFile, creds); err != nil {
			return nil, fmt.Errorf("ROOMHOOK_ENDPOINTS_FILE: %w", err)
		}
	}
	inFile := make(map[string]bool, len(out))
	for _, ep := range out {
		inFile[ep.ID] = true
	}
	for _, u := range urls {
		if id := endpoint.ID(u); !inFile[id] {
			out = append(out, endpoint.Endpoint{ID: id, URL: u, Credentials: creds, Global: true})
		}
	}
	return out, nil
}

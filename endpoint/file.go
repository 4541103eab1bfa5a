package endpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
)

// ErrFile marks an endpoints file that cannot be used. Errors name the entry (from 1,
// with its line) and the field, and never repeat a secret or a value that might be one.
var ErrFile = errors.New("invalid endpoints file")

// endpointEntry is one decoded entry of the endpoints file.
type endpointEntry struct {
	URL             string
	Include         []string
	Exclude         []string
	APIKey          string
	APISecret       string
	StandardSecrets []string
	Enabled         bool
	Paused          bool

	lines map[string]int // line of each key given, for errors
}

// decodeField decodes the value of one key of an entry into e; false for an unknown key. The
// error text never contains the value.
func (e *endpointEntry) decodeField(key string, n *yaml.Node) (bool, error) {
	switch key {
	case "url":
		return true, yamlString(n, &e.URL)
	case "events":
		return true, decodeEventFilter(e, n)
	case "api_key":
		return true, yamlString(n, &e.APIKey)
	case "api_secret":
		return true, yamlString(n, &e.APISecret)
	case "standard_webhooks_secrets":
		return true, yamlStrings(n, &e.StandardSecrets)
	case "enabled":
		return true, yamlBool(n, &e.Enabled)
	case "paused":
		return true, yamlBool(n, &e.Paused)
	}
	return false, nil
}

// LoadFile reads the endpoints file at path (ROOMHOOK_ENDPOINTS_FILE) and returns its
// enabled entries as global endpoints, in file order. The file lists global endpoints with
// settings that a comma-separated ROOMHOOK_WEBHOOK_URLS cannot carry:
//
//	endpoints:
//	  - url: https://lms.example.com/roomhook
//	    events:            # optional filter
//	      include: [room_started, room_finished]
//	      exclude: []
//	    api_key: lms-key   # optional: own credentials (both or neither)
//	    api_secret: lms-secret
//	    standard_webhooks_secrets: [whsec_..., whsec_...]   # optional, several during rotation
//	    enabled: true      # false: ignored entirely
//	    paused: false      # true: registered paused (its backlog waits)
//
// Only url is required. Decoding is strict: an unknown key, a value of the wrong type, a URL
// that ParseWebhookURLs refuses, an event name that schema.ValidateEvent refuses, a secret that
// is not whsec_ followed by base64, or a URL listed twice (in canonical form, entries with
// enabled: false included) makes the whole file invalid. paused: true pauses the endpoint
// whenever a replica starts with the file; `roomhook endpoints resume` resumes it until then.
// Entries without api_key and api_secret sign with defaults.
func LoadFile(path string, defaults signature.Credentials) ([]Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	eps, err := parseEndpointsFile(data, defaults)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return eps, nil
}

func parseEndpointsFile(data []byte, defaults signature.Credentials) ([]Endpoint, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file lists no endpoints
		}
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrFile)
	}
	doc := resolve(&root)
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = resolve(doc.Content[0])
	}
	if isNull(doc) {
		return nil, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: line %d: want a mapping with the key endpoints", ErrFile, doc.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, value := doc.Content[i], resolve(doc.Content[i+1])
		if key.Value != "endpoints" {
			return nil, fmt.Errorf("%w: line %d: unknown key %q (the only top-level key is endpoints)", ErrFile, key.Line, key.Value)
		}
		if list != nil {
			return nil, fmt.Errorf("%w: line %d: endpoints given twice", ErrFile, key.Line)
		}
		list = value
	}
	if list == nil || isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: line %d: endpoints must be a list", ErrFile, list.Line)
	}

	out := make([]Endpoint, 0, len(list.Content))
	firstEntry := map[string]int{} // canonical URL -> entry number
	for i, item := range list.Content {
		n := i + 1
		item = resolve(item)
		e, line, err := decodeEntry(item)
		// fail names the entry and the line of the key at fault (the entry's first line when
		// the key is missing).
		fail := func(key string, err error) error {
			at := line
			if l, ok := e.lines[key]; ok {
				at = l
			}
			return fmt.Errorf("%w: entry %d (line %d): %w", ErrFile, n, at, err)
		}
		if err != nil {
			return nil, fail("", err)
		}
		urls, err := ParseWebhookURLs([]string{e.URL})
		if err != nil {
			return nil, fail("url", fmt.Errorf("url: %w", err))
		}
		if len(urls) == 0 {
			return nil, fail("url", errors.New("url is required"))
		}
		url := urls[0]
		if prev, dup := firstEntry[url]; dup {
			return nil, fail("url", fmt.Errorf("url is the same as entry %d's; list each endpoint once", prev))
		}
		firstEntry[url] = n
		for _, list := range []struct {
			name   string
			events []string
		}{{"events.include", e.Include}, {"events.exclude", e.Exclude}} {
			for j, ev := range list.events {
				if err := schema.ValidateEvent(ev); err != nil {
					return nil, fail("events", fmt.Errorf("%s[%d]: %w", list.name, j, err))
				}
			}
		}
		if (e.APIKey == "") != (e.APISecret == "") {
			key := "api_key"
			if e.APIKey == "" {
				key = "api_secret"
			}
			return nil, fail(key, errors.New("api_key and api_secret go together: set both or neither"))
		}
		for j, secret := range e.StandardSecrets {
			// Signing a dummy message is the check the sender itself would fail later.
			if _, err := signature.SignStandard(secret, "check", time.Unix(0, 0), nil); err != nil {
				return nil, fail("standard_webhooks_secrets", fmt.Errorf("standard_webhooks_secrets[%d]: %w", j, err))
			}
		}
		if !e.Enabled {
			continue
		}
		creds := defaults
		if e.APIKey != "" {
			creds = signature.Credentials{APIKey: e.APIKey, APISecret: e.APISecret}
		}
		out = append(out, Endpoint{
			ID: ID(url), URL: url, Credentials: creds, StandardSecrets: e.StandardSecrets,
			Filter: EventFilter{Include: e.Include, Exclude: e.Exclude}, Paused: e.Paused, Global: true,
		})
	}
	return out, nil
}

// decodeEntry decodes one entry; on error it also returns the line of the key at fault.
func decodeEntry(item *yaml.Node) (endpointEntry, int, error) {
	e := endpointEntry{Enabled: true, lines: map[string]int{}}
	if item.Kind != yaml.MappingNode {
		return e, item.Line, errors.New("want a mapping with at least url")
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		key, value := item.Content[i], resolve(item.Content[i+1])
		if _, seen := e.lines[key.Value]; seen {
			return e, key.Line, fmt.Errorf("%s given twice", key.Value)
		}
		e.lines[key.Value] = key.Line
		known, err := e.decodeField(key.Value, value)
		if !known {
			return e, key.Line, fmt.Errorf("unknown key %q (known: url, events, api_key, api_secret, standard_webhooks_secrets, enabled, paused)", key.Value)
		}
		if err != nil {
			return e, key.Line, fmt.Errorf("%s: %w", key.Value, err)
		}
	}
	return e, item.Line, nil
}

func decodeEventFilter(e *endpointEntry, n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return errors.New("must be a mapping with include and/or exclude lists")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], resolve(n.Content[i+1])
		var dst *[]string
		switch key.Value {
		case "include":
			dst = &e.Include
		case "exclude":
			dst = &e.Exclude
		default:
			return fmt.Errorf("unknown key %q (known: include, exclude)", key.Value)
		}
		if seen[key.Value] {
			return fmt.Errorf("%s given twice", key.Value)
		}
		seen[key.Value] = true
		if err := yamlStrings(value, dst); err != nil {
			return fmt.Errorf("%s: %w", key.Value, err)
		}
	}
	return nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// yamlString accepts a string scalar. Numbers and booleans are refused rather than turned into
// text, so that `api_secret: 0123` does not silently become "123".
func yamlString(n *yaml.Node, dst *string) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return errors.New("must be a string (quote numbers and true/false)")
	}
	*dst = n.Value
	return nil
}

func yamlStrings(n *yaml.Node, dst *[]string) error {
	if isNull(n) {
		*dst = nil
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return errors.New("must be a list of strings")
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		var s string
		if err := yamlString(resolve(item), &s); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	*dst = slices.Clip(out)
	return nil
}

func yamlBool(n *yaml.Node, dst *bool) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return errors.New("must be true or false")
	}
	return n.Decode(dst)
}

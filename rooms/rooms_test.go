package rooms

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/roomhook/roomhook/endpoint"
)

// The rooms bucket keeps endpoint ids, not URLs; a record an earlier version wrote with full
// URLs still routes to the same endpoints.
func TestRecordEndpointIDs(t *testing.T) {
	t.Parallel()
	url := "https://lms.example/hook?token=t0k"
	var legacy Record
	if err := json.Unmarshal([]byte(`{"room":"r1","urls":["`+url+`"],"created_seq":3}`), &legacy); err != nil {
		t.Fatal(err)
	}
	if got := legacy.EndpointIDs(); !slices.Equal(got, []string{endpoint.ID(url)}) {
		t.Errorf("legacy record: endpoints %q", got)
	}
	b, _ := json.Marshal(Record{Room: "r1", Endpoints: legacy.EndpointIDs()})
	if bytes.Contains(b, []byte("t0k")) || bytes.Contains(b, []byte(`"urls"`)) {
		t.Errorf("record written as %s", b)
	}
}

package dashboard

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The committed JSON, here and in the chart, is what Build produces now: a panel changed in Go
// without `go generate ./dashboard` fails here, not in someone's Grafana.
func TestCommittedJSONIsCurrent(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"roomhook.json", "../charts/roomhook/dashboards/roomhook.json"} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run: go generate ./dashboard)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what package dashboard generates; run: go generate ./dashboard", path)
		}
	}
}

// Every query is scoped to the region variable, so that choosing a region shows only it, and
// every panel has a query and says what it shows.
func TestEveryQueryFollowsTheRegionVariable(t *testing.T) {
	for _, r := range Rows() {
		for _, p := range r.Panels {
			if len(p.Queries) == 0 || p.Description == "" {
				t.Errorf("panel %q: needs queries and a description", p.Title)
			}
			for _, q := range p.Queries {
				if !strings.Contains(q.Expr, sel) {
					t.Errorf("panel %q: query %s does not select %s", p.Title, q.Expr, sel)
				}
			}
		}
	}
}

// The JSON has what Grafana needs to import it: a uid, unique panel ids, and the region and
// datasource variables the queries use.
func TestDashboardJSONShape(t *testing.T) {
	out, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID   int    `json:"id"`
			Type string `json:"type"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != UID {
		t.Errorf("uid %q, want %q", d.UID, UID)
	}
	seen := map[int]bool{}
	for _, p := range d.Panels {
		if p.ID == 0 || seen[p.ID] {
			t.Errorf("panel of type %s has id %d: ids must be unique and set", p.Type, p.ID)
		}
		seen[p.ID] = true
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["region"] || !vars["datasource"] {
		t.Errorf("variables %v, want region and datasource", vars)
	}
}

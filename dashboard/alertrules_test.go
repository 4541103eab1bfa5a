package dashboard

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// rulesPath is the alert rules' one source: the chart includes it, promtool tests it.
const rulesPath = "../charts/roomhook/rules/roomhook-rules.yaml"

// finalComparison is the end every alert expression has: a comparison with a number. The
// chart's prometheusrule.yaml replaces that number with the threshold of its values, with the
// same pattern.
var finalComparison = regexp.MustCompile(`([<>]=?|[=!]=)\s*[-+0-9.eE]+\s*$`)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// threshold is the number the expression compares with.
func (r rule) threshold() string {
	m := finalComparison.FindString(r.Expr)
	return strings.TrimSpace(strings.TrimLeft(m, "<>=! "))
}

// signal is the expression without its final comparison: the series the alert watches, which
// exist whether or not the alert fires.
func (r rule) signal() string {
	return strings.TrimSpace(finalComparison.ReplaceAllString(r.Expr, ""))
}

// withThreshold returns r comparing with threshold instead, as the chart's template does.
func (r rule) withThreshold(threshold string) rule {
	r.Expr = finalComparison.ReplaceAllString(r.Expr, "${1} "+threshold)
	return r
}

func loadRules(t testing.TB) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	return f
}

func (f ruleFile) alerts() []rule {
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// The alerts are all there, each ending with the comparison the chart's thresholds
// replace, with a severity and a runbook that docs/alerts.md has.
func TestAlertRulesShape(t *testing.T) {
	want := []string{"RoomhookNoReadyReplica", "RoomhookOldestUndeliveredTooOld", "RoomhookBreakerOpen",
		"RoomhookDeadLettersRising", "RoomhookInvalidEvents", "RoomhookUnroutedEvents", "RoomhookPartitionsUnowned",
		"RoomhookNATSDisconnected"}
	docs, err := os.ReadFile("../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rule{}
	for _, r := range loadRules(t).alerts() {
		got[r.Alert] = r
		if !finalComparison.MatchString(r.Expr) {
			t.Errorf("%s: expression %q does not end with a comparison with a number", r.Alert, r.Expr)
		}
		if r.Labels["severity"] == "" {
			t.Errorf("%s: no severity label", r.Alert)
		}
		anchor := strings.ToLower(r.Alert)
		if r.Annotations["runbook_url"] != "https://github.com/roomhook/roomhook/blob/main/docs/alerts.md#"+anchor {
			t.Errorf("%s: runbook_url %q does not point at docs/alerts.md#%s", r.Alert, r.Annotations["runbook_url"], anchor)
		}
		if !strings.Contains(string(docs), "## "+r.Alert+"\n") {
			t.Errorf("%s: docs/alerts.md has no section \"## %s\"", r.Alert, r.Alert)
		}
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("no alert %s", name)
		}
	}
}

// The chart's values list the rule file's defaults, so that what values.yaml shows is what
// the rules do; the partition alert's default threshold is the chart's partition count.
func TestChartValuesMatchRuleDefaults(t *testing.T) {
	raw, err := os.ReadFile("../charts/roomhook/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Partitions int `yaml:"partitions"`
		} `yaml:"config"`
		PrometheusRule struct {
			Alerts map[string]struct {
				For       string   `yaml:"for"`
				Severity  string   `yaml:"severity"`
				Threshold *float64 `yaml:"threshold"`
			} `yaml:"alerts"`
		} `yaml:"prometheusRule"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	for _, r := range loadRules(t).alerts() {
		v, ok := values.PrometheusRule.Alerts[r.Alert]
		if !ok {
			t.Errorf("values.yaml prometheusRule.alerts has no %s", r.Alert)
			continue
		}
		if v.For != r.For || v.Severity != r.Labels["severity"] {
			t.Errorf("%s: values.yaml has for %q severity %q, the rule file %q and %q", r.Alert, v.For, v.Severity, r.For, r.Labels["severity"])
		}
		switch {
		case r.Alert == "RoomhookPartitionsUnowned":
			if v.Threshold != nil || r.threshold() != fmt.Sprint(values.Config.Partitions) {
				t.Errorf("%s: the rule file's threshold %s must be config.partitions (%d), and values.yaml must not set one", r.Alert, r.threshold(), values.Config.Partitions)
			}
		case v.Threshold != nil:
			if fmt.Sprint(*v.Threshold) != r.threshold() {
				t.Errorf("%s: values.yaml threshold %v, the rule file %s", r.Alert, *v.Threshold, r.threshold())
			}
		}
	}
}

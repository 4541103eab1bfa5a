package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// promAPI is a client of the Prometheus HTTP API (/api/v1), enough for the tests: queries,
// range queries and alerts.
type promAPI struct {
	base string // http://127.0.0.1:port
}

// series is one labelled series of a query's result, its samples in time order.
type series struct {
	Labels  map[string]string
	Samples []sample
}

type sample struct {
	T time.Time
	V float64
}

// hasValue reports whether any sample is a number (histogram_quantile over no observations
// gives NaN, which is no data to look at).
func (s series) hasValue() bool {
	for _, p := range s.Samples {
		if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			return true
		}
	}
	return false
}

// alert is one entry of /api/v1/alerts.
type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p promAPI) get(ctx context.Context, path string, params url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return fmt.Errorf("prometheus request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("prometheus %s answered %d, not JSON: %w", path, resp.StatusCode, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus %s %s: %s", path, params.Get("query"), env.Error)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("prometheus %s: decode data: %w", path, err)
	}
	return nil
}

// queryRange evaluates expr from start to end every step.
func (p promAPI) queryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]series, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{"query": {expr}, "start": {unixParam(start)}, "end": {unixParam(end)}, "step": {step.String()}}
	if err := p.get(ctx, "/api/v1/query_range", params, &data); err != nil {
		return nil, err
	}
	out := make([]series, 0, len(data.Result))
	for _, r := range data.Result {
		s := series{Labels: r.Metric}
		for _, v := range r.Values {
			smp, err := parseSample(v)
			if err != nil {
				return nil, fmt.Errorf("query_range %s: %w", expr, err)
			}
			s.Samples = append(s.Samples, smp)
		}
		out = append(out, s)
	}
	return out, nil
}

// query evaluates expr now; a scalar result comes back as one series without labels.
func (p promAPI) query(ctx context.Context, expr string) ([]series, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		out := make([]series, 0, len(vec))
		for _, v := range vec {
			smp, err := parseSample(v.Value)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", expr, err)
			}
			out = append(out, series{Labels: v.Metric, Samples: []sample{smp}})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		smp, err := parseSample(v)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		return []series{{Samples: []sample{smp}}}, nil
	default:
		return nil, fmt.Errorf("query %s: result type %s", expr, data.ResultType)
	}
}

// alerts lists the alerts Prometheus' rule evaluation holds now (pending and firing).
func (p promAPI) alerts(ctx context.Context) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	if err := p.get(ctx, "/api/v1/alerts", url.Values{}, &data); err != nil {
		return nil, err
	}
	return data.Alerts, nil
}

// parseSample reads [unix seconds, "value"].
func parseSample(v [2]any) (sample, error) {
	ts, ok := v[0].(float64)
	str, ok2 := v[1].(string)
	if !ok || !ok2 {
		return sample{}, fmt.Errorf("sample %v is not [time, \"value\"]", v)
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return sample{}, fmt.Errorf("sample value %q: %w", str, err)
	}
	sec, frac := math.Modf(ts)
	return sample{T: time.Unix(int64(sec), int64(frac*1e9)), V: f}, nil
}

func unixParam(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

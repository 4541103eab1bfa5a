package dashboard

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// renderedPanels are the panels docs/dashboard.png draws, in reading order: the ones an
// operator looks at first.
var renderedPanels = []string{
	"Events in",
	"Deliveries by outcome",
	"End-to-end latency",
	"Retries per endpoint (top " + topK + ")",
	"Open breakers",
	"Dead letters by reason",
}

// renderPanels draws renderedPanels from results (range-query results by dashboard expression)
// into a PNG at path, two panels a row, legends as Grafana would write them; endpointNames
// gives the endpoint ids readable names.
func renderPanels(path string, results map[string][]series, endpointNames map[string]string) error {
	byTitle := map[string]Panel{}
	for _, r := range Rows() {
		for _, p := range r.Panels {
			byTitle[p.Title] = p
		}
	}
	const cols = 2
	rows := (len(renderedPanels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, title := range renderedPanels {
		p, ok := byTitle[title]
		if !ok {
			return fmt.Errorf("render: no panel %q", title)
		}
		pl, err := panelPlot(p, results, endpointNames)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = pl
	}
	img := vgimg.NewWith(vgimg.UseWH(30*vg.Centimeter, vg.Length(rows)*8*vg.Centimeter), vgimg.UseDPI(110))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadTop: vg.Centimeter / 3, PadBottom: vg.Centimeter / 3,
		PadLeft: vg.Centimeter / 3, PadRight: vg.Centimeter / 3, PadX: vg.Centimeter / 2, PadY: vg.Centimeter / 2}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			if plots[r][c] != nil {
				plots[r][c].Draw(canvases[r][c])
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("render %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	return nil
}

// panelPlot draws one panel's series: x is seconds into the run, a line per series that has a
// number at all.
func panelPlot(p Panel, results map[string][]series, endpointNames map[string]string) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = vg.Points(11)
	pl.X.Label.Text = "seconds into the run"
	pl.Y.Label.Text = unitLabel(p.Unit)
	// The legend sits in headroom above the lines (set below), where it hides none of them.
	pl.Legend.Top = true
	pl.Legend.TextStyle.Font.Size = vg.Points(8)
	pl.Add(plotter.NewGrid())
	var t0 float64 = math.Inf(1)
	for _, q := range p.Queries {
		for _, s := range results[q.Expr] {
			if len(s.Samples) > 0 {
				t0 = math.Min(t0, float64(s.Samples[0].T.UnixMilli())/1000)
			}
		}
	}
	n, maxY, maxX := 0, 0.0, 0.0
	for _, q := range p.Queries {
		ss := append([]series(nil), results[q.Expr]...)
		sort.Slice(ss, func(i, j int) bool { return legend(q.Legend, ss[i].Labels, nil) < legend(q.Legend, ss[j].Labels, nil) })
		for _, s := range ss {
			if !s.hasValue() || allZero(s) {
				continue
			}
			var xys plotter.XYs
			for _, smp := range s.Samples {
				if math.IsNaN(smp.V) || math.IsInf(smp.V, 0) {
					continue
				}
				xy := plotter.XY{X: float64(smp.T.UnixMilli())/1000 - t0, Y: smp.V}
				maxY, maxX = math.Max(maxY, xy.Y), math.Max(maxX, xy.X)
				xys = append(xys, xy)
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return nil, fmt.Errorf("render %s: %w", p.Title, err)
			}
			line.Color = plotutil.Color(n)
			line.Width = vg.Points(1.5)
			pl.Add(line)
			pl.Legend.Add(legend(q.Legend, s.Labels, endpointNames), line)
			n++
		}
	}
	pl.Y.Min = 0
	if maxY > 0 {
		pl.Y.Max = maxY * (1.15 + 0.12*float64(n))
	}
	var ticks []plot.Tick
	for x := 0.0; x <= maxX; x += 10 {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprintf("%.0f", x)})
	}
	pl.X.Tick.Marker = plot.ConstantTicks(ticks)
	return pl, nil
}

func allZero(s series) bool {
	for _, p := range s.Samples {
		if p.V != 0 && !math.IsNaN(p.V) {
			return false
		}
	}
	return true
}

// legend fills Grafana's {{label}} placeholders from labels; endpoint ids are shown by name.
func legend(format string, labels map[string]string, endpointNames map[string]string) string {
	out := format
	for k, v := range labels {
		if k == "endpoint" && endpointNames[v] != "" {
			v = endpointNames[v]
		}
		out = strings.ReplaceAll(out, "{{"+k+"}}", v)
	}
	return out
}

func unitLabel(unit string) string {
	switch unit {
	case "ops":
		return "per second"
	case "reqps":
		return "requests per second"
	case "s":
		return "seconds"
	default:
		return ""
	}
}

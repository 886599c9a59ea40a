package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/warpdns/warpdns/test/cluster"
)

// series is one kind of side (ours, upstream, k8s_gateway) across the
// comparisons; a comparison without that side has no bar.
type series struct {
	name  string
	color color.Color
	runs  func(Pair) []perf
}

var chartSeries = []series{
	{"ours", color.RGBA{0x1f, 0x6f, 0xc5, 0xff}, func(p Pair) []perf { return p.Ours.perRound() }},
	{"upstream " + cluster.UpstreamCoreDNS, color.RGBA{0x9a, 0x9a, 0x9a, 0xff}, func(p Pair) []perf { return p.Upstream.perRound() }},
	{"k8s_gateway", color.RGBA{0xe0, 0x8a, 0x1e, 0xff}, func(p Pair) []perf {
		if p.Peer == nil {
			return nil
		}
		return p.Peer.Runs
	}},
}

// Chart draws the throughput comparisons as a PNG: QPS and server CPU per
// query per setup and side, each bar the median over the rounds with an
// error bar from the lowest to the highest round.
func (r *Results) Chart() ([]byte, error) {
	pairs := slices.Concat(r.Throughput, r.Saturated)
	qps, err := barPlot(pairs, "Queries per second (higher is better)", "QPS", func(x perf) float64 { return x.QPS })
	if err != nil {
		return nil, err
	}
	cpu, err := barPlot(pairs, "Server CPU per query (lower is better)", "µs per query", func(x perf) float64 {
		return float64(x.CPUPerQuery) / float64(time.Microsecond)
	})
	if err != nil {
		return nil, err
	}
	qps.Title.Text = fmt.Sprintf("Ours vs upstream CoreDNS %s, same machine, same run: median of the rounds, bars from min to max\n%s", cluster.UpstreamCoreDNS, qps.Title.Text)

	img := vgimg.New(13*vg.Inch, 10*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10), PadY: vg.Points(20)}
	canvases := plot.Align([][]*plot.Plot{{qps}, {cpu}}, tiles, dc)
	qps.Draw(canvases[0][0])
	cpu.Draw(canvases[1][0])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// barPlot is one panel: a group of bars per comparison, one bar per side.
func barPlot(pairs []Pair, title, ylabel string, value func(perf) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Y.Tick.Marker = plainTicks
	p.Legend.Top, p.Legend.Left = true, true
	n := float64(len(chartSeries))
	var ticks []plot.Tick
	for g, pair := range pairs {
		ticks = append(ticks, plot.Tick{Value: float64(g) + (n-1)/(2*(n+1)), Label: pair.Label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.5, float64(len(pairs))-0.2
	top := 0.0
	barWidth := 12 * vg.Inch / vg.Length(len(pairs)) / vg.Length(n+1) * 0.9
	for k, s := range chartSeries {
		var mids plotter.Values
		var ranges struct { // the min-max range of each bar's rounds
			plotter.XYs
			plotter.YErrors
		}
		xMin := float64(k) / (n + 1)
		for i, pair := range pairs {
			var vs []float64
			for _, run := range s.runs(pair) {
				vs = append(vs, value(run))
			}
			m := Median(vs)
			mids = append(mids, m)
			if len(vs) == 0 {
				continue
			}
			top = max(top, slices.Max(vs))
			ranges.XYs = append(ranges.XYs, plotter.XY{X: float64(i) + xMin, Y: m})
			ranges.YErrors = append(ranges.YErrors, struct{ Low, High float64 }{m - slices.Min(vs), slices.Max(vs) - m})
		}
		if len(ranges.XYs) == 0 {
			continue // no comparison has this side (k8s_gateway did not build)
		}
		bars, err := plotter.NewBarChart(mids, barWidth)
		if err != nil {
			return nil, err
		}
		bars.XMin = xMin
		bars.Color, bars.LineStyle.Width = s.color, 0
		p.Add(bars)
		p.Legend.Add(s.name, bars)
		eb, err := plotter.NewYErrorBars(ranges)
		if err != nil {
			return nil, err
		}
		p.Add(eb)
	}
	p.Y.Max = 1.2 * top // room for the legend
	return p, nil
}

// plainTicks are gonum's default ticks labelled without trailing zeros.
var plainTicks = plot.TickerFunc(func(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
})

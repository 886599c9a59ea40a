package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"time"
)

var (
	colOurs     = color.RGBA{0x1f, 0x6f, 0xc5, 0xff}
	colUpstream = color.RGBA{0x9a, 0x9a, 0x9a, 0xff}
	colCeiling  = color.RGBA{0x3a, 0xa0, 0x5a, 0xff}
	colText     = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colAxis     = color.RGBA{0xd0, 0xd0, 0xd0, 0xff}
)

// chartLabels are the short names of the setups in the chart.
var chartLabels = map[string]string{
	"stock-a":           "STOCK, A",
	"incluster-a":       "EXAMPLE :53, A",
	"vpc-a":             "VPC PATH, A",
	"vpc-srv":           "VPC PATH, SRV",
	"vpc-a-stock":       "VPC A, UP STOCK",
	"incluster-a-stock": ":53 A, UP STOCK",
}

type bar struct {
	value float64
	text  string
	col   color.RGBA
}

type barGroup struct {
	label string
	note  string // e.g. the ratio, drawn under the label
	bars  []bar
}

// Chart draws the throughput results as a PNG: QPS per setup (ours,
// upstream, and the whoami ceiling), and p99 latency per setup.
func (r *Results) Chart() ([]byte, error) {
	var qps, p99, cpu []barGroup
	for _, p := range r.Throughput {
		s := p.summary(r.Whoami)
		label := chartLabels[p.Key]
		if label == "" {
			label = p.Key
		}
		note := fmt.Sprintf("RATIO %.3f", s.Ratio)
		qps = append(qps, barGroup{label, note, []bar{
			{s.OursQPS, fmt.Sprintf("%.0f", s.OursQPS), colOurs},
			{s.UpQPS, fmt.Sprintf("%.0f", s.UpQPS), colUpstream},
		}})
		p99 = append(p99, barGroup{label, "", []bar{
			{ms(s.OursP99), fmt.Sprintf("%.2f MS", ms(s.OursP99)), colOurs},
			{ms(s.UpP99), fmt.Sprintf("%.2f MS", ms(s.UpP99)), colUpstream},
		}})
		cpu = append(cpu, barGroup{label, fmt.Sprintf("RATIO %.3f", s.CPURatio), []bar{
			{us(s.OursCPU), fmt.Sprintf("%.1f US", us(s.OursCPU)), colOurs},
			{us(s.UpCPU), fmt.Sprintf("%.1f US", us(s.UpCPU)), colUpstream},
		}})
	}
	if len(r.Whoami) > 0 {
		var q []float64
		var l, c []time.Duration
		for _, w := range r.Whoami {
			q, l, c = append(q, w.QPS), append(l, w.P99), append(c, w.CPUPerQuery)
		}
		wq, wl, wc := median(q), medianDur(l), medianDur(c)
		cpu = append(cpu, barGroup{"WHOAMI (CEILING)", "", []bar{{us(wc), fmt.Sprintf("%.1f US", us(wc)), colCeiling}}})
		qps = append(qps, barGroup{"WHOAMI (CEILING)", "", []bar{{wq, fmt.Sprintf("%.0f", wq), colCeiling}}})
		p99 = append(p99, barGroup{"WHOAMI (CEILING)", "", []bar{{ms(wl), fmt.Sprintf("%.2f MS", ms(wl)), colCeiling}}})
	}

	const (
		width   = 1000
		margin  = 24
		labelW  = 220
		valueW  = 130
		barH    = 18
		barGap  = 4
		groupGp = 16
		scale   = 2
	)
	panelH := func(groups []barGroup) int {
		h := 40
		for _, g := range groups {
			h += len(g.bars)*(barH+barGap) + groupGp
		}
		return h
	}
	height := margin + 40 + panelH(qps) + 20 + panelH(p99) + 20 + panelH(cpu) + margin
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	// Title and legend.
	y := margin
	drawText(img, margin, y, fmt.Sprintf("OURS VS UPSTREAM COREDNS %s, SAME MACHINE, MEDIAN OF %d ROUNDS", upstreamVersion, r.Config.Rounds), scale, colText)
	y += 24
	x := margin
	for _, l := range []struct {
		text string
		col  color.RGBA
	}{{"OURS", colOurs}, {"UPSTREAM " + upstreamVersion, colUpstream}, {"UPSTREAM WHOAMI", colCeiling}} {
		fill(img, x, y, 14, 14, l.col)
		drawText(img, x+20, y, l.text, scale, colText)
		x += 20 + textWidth(l.text, scale) + 30
	}
	y += 40

	panel := func(title string, groups []barGroup) {
		drawText(img, margin, y, title, scale, colText)
		y += 30
		maxV := 0.0
		for _, g := range groups {
			for _, b := range g.bars {
				maxV = max(maxV, b.value)
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		area := width - 2*margin - labelW - valueW
		x0 := margin + labelW
		top := y
		for _, g := range groups {
			drawText(img, margin, y+2, g.label, scale, colText)
			if g.note != "" {
				drawText(img, margin, y+barH+barGap+4, g.note, 1, colText)
			}
			for _, b := range g.bars {
				w := int(b.value / maxV * float64(area))
				fill(img, x0, y, max(w, 1), barH, b.col)
				drawText(img, x0+w+6, y+2, b.text, scale, colText)
				y += barH + barGap
			}
			y += groupGp
		}
		fill(img, x0-1, top-4, 1, y-top, colAxis)
		y += 10
	}
	panel("QUERIES PER SECOND (HIGHER IS BETTER)", qps)
	panel("P99 LATENCY (LOWER IS BETTER)", p99)
	panel("SERVER CPU PER QUERY, MICROSECONDS (LOWER IS BETTER)", cpu)

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fill(img *image.RGBA, x, y, w, h int, c color.Color) {
	draw.Draw(img, image.Rect(x, y, x+w, y+h), &image.Uniform{c}, image.Point{}, draw.Src)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

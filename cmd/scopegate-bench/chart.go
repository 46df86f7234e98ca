package main

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The chart's layout, in SVG user units: two line panels, then the bars
// of CPU per check, whose scenario names need a wide gutter.
const (
	chartWidth  = 1280
	chartHeight = 470
	panelTop    = 50
	panelHeight = 300
	panelWidth  = 300 // of a line panel's plot
	barsWidth   = 250 // of the bar panel's plot
	line1Left   = 70  // where the plots start
	line2Left   = line1Left + panelWidth + 90
	barsLeft    = line2Left + panelWidth + 200
)

// chartColors tells the series apart.
var chartColors = []string{"#555555", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

// svg writes SVG elements.
type svg struct {
	w io.Writer
}

func (s svg) printf(format string, args ...any) { fmt.Fprintf(s.w, format, args...) }

func (s svg) text(x, y float64, anchor, class, text string) {
	s.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" class="%s">%s</text>`+"\n", x, y, anchor, class, html.EscapeString(text))
}

func (s svg) line(x1, y1, x2, y2 float64, style string) {
	s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" style="%s"/>`+"\n", x1, y1, x2, y2, style)
}

// series is one scenario's line in a panel.
type series struct {
	name  string
	color string
	y     []float64 // by concurrency; NaN where there is no result
}

// writeChart writes the report's chart: throughput and p99 latency
// against concurrency for the floor and the JWT scenarios, and the server
// CPU per check of every scenario at the concurrency of the targets.
func (r *Report) writeChart(w io.Writer) {
	s := svg{w}
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	s.printf("<style>.t{font-size:14px;font-weight:bold}.a{font-size:11px;fill:#333}.l{font-size:11px}</style>\n")
	s.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")

	var rps, p99 []series
	color := 0
	for _, info := range r.Scenarios {
		if info.Group != groupJWT {
			continue
		}
		a := series{name: info.Name, color: chartColors[color%len(chartColors)]}
		b := a
		for _, c := range suiteConcurrency {
			res := r.result(info.Name, c)
			if res == nil {
				a.y, b.y = append(a.y, math.NaN()), append(b.y, math.NaN())
				continue
			}
			a.y, b.y = append(a.y, res.RPS), append(b.y, float64(res.Latency.P99))
		}
		rps, p99 = append(rps, a), append(p99, b)
		color++
	}
	s.linePanel(line1Left, "Throughput (checks/s)", rps, false)
	s.linePanel(line2Left, "p99 latency (µs, log scale)", p99, true)
	s.cpuPanel(barsLeft, r)
	s.legend(rps)
	s.printf("</svg>\n")
}

// linePanel draws series against concurrency in the panel whose plot
// starts at x.
func (s svg) linePanel(x float64, title string, ss []series, logScale bool) {
	top, bottom := float64(panelTop), float64(panelTop+panelHeight)
	s.text(x+panelWidth/2, top-20, "middle", "t", title)
	lo, hi := math.Inf(1), 0.0
	for _, se := range ss {
		for _, v := range se.y {
			if !math.IsNaN(v) && v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi == 0 {
		return
	}
	var ticks []float64
	var scale func(float64) float64
	if logScale {
		ticks = logTicks(lo, hi)
		l0, l1 := math.Log10(ticks[0]), math.Log10(ticks[len(ticks)-1])
		scale = func(v float64) float64 { return bottom - (math.Log10(v)-l0)/(l1-l0)*panelHeight }
	} else {
		ticks = linearTicks(hi)
		top := ticks[len(ticks)-1]
		scale = func(v float64) float64 { return bottom - v/top*panelHeight }
	}
	for _, t := range ticks {
		y := scale(t)
		s.line(x, y, x+panelWidth, y, "stroke:#ddd")
		s.text(x-6, y+4, "end", "a", tickLabel(t))
	}
	s.line(x, top, x, bottom, "stroke:#333")
	s.line(x, bottom, x+panelWidth, bottom, "stroke:#333")
	xs := make([]float64, len(suiteConcurrency))
	for i, c := range suiteConcurrency {
		xs[i] = x + 20 + float64(i)*(panelWidth-40)/float64(len(suiteConcurrency)-1)
		s.text(xs[i], bottom+16, "middle", "a", strconv.Itoa(c))
	}
	s.text(x+panelWidth/2, bottom+34, "middle", "a", "concurrency")
	for _, se := range ss {
		var pts []string
		for i, v := range se.y {
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs[i], scale(v)))
			s.printf(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xs[i], scale(v), se.color)
		}
		if len(pts) > 1 {
			s.printf(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), se.color)
		}
	}
}

// cpuPanel draws the server CPU per check of every scenario at the
// concurrency of the targets, as bars, with the floor's marked.
func (s svg) cpuPanel(x float64, r *Report) {
	type bar struct {
		name string
		v    float64
	}
	var bars []bar
	for _, info := range r.Scenarios {
		if res := r.result(info.Name, targetConcurrency); res != nil && res.Server != nil {
			bars = append(bars, bar{info.Name, res.Server.CPUPerCheck})
		}
	}
	width := float64(barsWidth)
	s.text(x+width/2-60, panelTop-20, "middle", "t", fmt.Sprintf("Server CPU per check (µs), c=%d", targetConcurrency))
	if len(bars) == 0 {
		return
	}
	hi := slices.MaxFunc(bars, func(a, b bar) int { return cmp.Compare(a.v, b.v) }).v
	top := linearTicks(hi)
	scale := func(v float64) float64 { return x + v/top[len(top)-1]*width }
	step := float64(panelHeight) / float64(len(bars))
	for _, t := range top {
		s.line(scale(t), panelTop, scale(t), panelTop+panelHeight, "stroke:#ddd")
		s.text(scale(t), panelTop+panelHeight+16, "middle", "a", tickLabel(t))
	}
	for i, b := range bars {
		y := panelTop + float64(i)*step
		s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f77b4"/>`+"\n", x, y+2, scale(b.v)-x, step-4)
		s.text(x-4, y+step/2+4, "end", "a", b.name)
		s.text(scale(b.v)+3, y+step/2+4, "start", "a", strconv.FormatFloat(b.v, 'f', 1, 64))
	}
	if fl := r.floor(targetConcurrency); fl != nil && fl.Server != nil {
		fx := scale(fl.Server.CPUPerCheck)
		s.line(fx, panelTop-6, fx, panelTop+panelHeight, "stroke:#d62728;stroke-dasharray:4 3")
		s.text(fx, panelTop-9, "middle", "a", "floor")
	}
}

// legend names the series of the line panels below them.
func (s svg) legend(ss []series) {
	x, y := float64(line1Left), float64(panelTop+panelHeight+60)
	for _, se := range ss {
		w := 22 + 7*float64(len(se.name)) + 20
		if x+w > line2Left+panelWidth {
			x, y = line1Left, y+18
		}
		s.line(x, y-4, x+18, y-4, "stroke:"+se.color+";stroke-width:3")
		s.text(x+22, y, "start", "l", se.name)
		x += w
	}
}

// linearTicks returns ticks from 0 to at least hi, about five of them,
// at 1, 2 or 5 times a power of ten apart.
func linearTicks(hi float64) []float64 {
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	var ticks []float64
	for t := 0.0; ; t += step {
		ticks = append(ticks, t)
		if t >= hi {
			return ticks
		}
	}
}

// logTicks returns ticks at 1, 2 and 5 times powers of ten, from the
// largest not above lo to the first not below hi.
func logTicks(lo, hi float64) []float64 {
	steps := []float64{1, 2, 5}
	mag, i := math.Pow(10, math.Floor(math.Log10(lo))), 0
	for i+1 < len(steps) && steps[i+1]*mag <= lo {
		i++
	}
	var ticks []float64
	for {
		t := steps[i] * mag
		ticks = append(ticks, t)
		if t >= hi {
			return ticks
		}
		if i++; i == len(steps) {
			i, mag = 0, mag*10
		}
	}
}

// tickLabel formats an axis value: 2500 as 2.5k.
func tickLabel(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

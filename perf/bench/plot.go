package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

const (
	svgWidth   = 1000
	labelWidth = 190
	barWidth   = 620
	barHeight  = 13
	barGap     = 3
	groupGap   = 22
)

// laneColor gives each peer the same colour in every chart.
func laneColor(label string) string {
	switch {
	case strings.Contains(label, "scrape"):
		return "#9467bd"
	case strings.HasPrefix(label, kindUring):
		return "#1f77b4"
	case strings.HasPrefix(label, kindStd):
		return "#7fb2dc"
	case strings.HasPrefix(label, kindKfake):
		return "#ff7f0e"
	case strings.HasPrefix(label, kindJS):
		return "#2ca02c"
	}
	return "#7f7f7f"
}

// svgPlot draws throughput bars for every workload but e2e and rtt, each workload scaled to its own fastest peer, and below them the
// latency CDF of each e2e workload. Hand-written SVG, no dependencies.
func svgPlot(r *report) []byte {
	var body bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&body, format, a...) }
	y := 30
	w(`<text x="10" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n", y, esc(fmt.Sprintf("Sluice benchmark %s (%s): throughput, MB/s, medians", strings.SplitN(r.Env.Date, "T", 2)[0], r.Env.ShortCommit)))
	y += 20
	for _, wl := range r.Workloads {
		// e2e runs at a fixed rate and rtt one request at a time: their
		// throughput says nothing.
		if wl.Mode == modeE2E || wl.Mode == modeRTT || wl.Mode == modeFailover {
			continue
		}
		sums := r.Summaries[wl.Name]
		if len(sums) == 0 {
			continue
		}
		top := 0.0
		for _, s := range sums {
			if !math.IsNaN(s.MBPerS) {
				top = max(top, s.MBPerS)
			}
		}
		y += 14
		w(`<text x="10" y="%d" font-size="12" font-weight="bold">%s</text>`+"\n", y, esc(wl.Name))
		y += 4
		for _, s := range sums {
			w(`<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>`+"\n", labelWidth-6, y+barHeight-3, esc(s.Lane))
			if s.OK == 0 || math.IsNaN(s.MBPerS) || top <= 0 {
				w(`<text x="%d" y="%d" font-size="11" fill="#c00">error</text>`+"\n", labelWidth, y+barHeight-3)
			} else {
				bw := max(1, int(math.Round(s.MBPerS/top*barWidth)))
				w(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelWidth, y, bw, barHeight, laneColor(s.Lane))
				w(`<text x="%d" y="%d" font-size="11">%s MB/s (%s)</text>`+"\n", labelWidth+bw+5, y+barHeight-3,
					esc(fmtNum(s.MBPerS, 1)), esc(fmtRatio(s.Ratio)))
			}
			y += barHeight + barGap
		}
		y += groupGap - 14
	}
	for _, wl := range r.Workloads {
		switch wl.Mode {
		case modeE2E:
			y = cdfChart(&body, r.Summaries[wl.Name], wl.Name, y+30)
		case modeRTT:
			y = rttChart(&body, r.Summaries[wl.Name], wl.Name, y+30)
		}
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		svgWidth, y+20, svgWidth, y+20)
	fmt.Fprintf(&out, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	out.Write(body.Bytes())
	out.WriteString("</svg>\n")
	return out.Bytes()
}

// nines maps a percentile to the x axis of a latency CDF: 90 → 1, 99 → 2,
// 99.9 → 3, so the tail gets as much room as the body. 100 (the maximum)
// sits half a step past 99.99.
func nines(p float64) float64 {
	if p >= 100 {
		return 4.5
	}
	return math.Min(-math.Log10(1-p/100), 4)
}

// cdfChart draws latency (log y) against percentile (nines x) for each
// lane and returns the y below it.
func cdfChart(b *bytes.Buffer, sums []summary, name string, y0 int) int {
	const left, width, height = 80, 760, 300
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w(`<text x="10" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", y0, esc(name+": end-to-end latency CDF (ms, log scale)"))
	top := y0 + 15
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range sums {
		for _, pt := range s.CDF {
			if pt[1] > 0 {
				lo, hi = math.Min(lo, pt[1]), math.Max(hi, pt[1])
			}
		}
	}
	if math.IsInf(lo, 1) {
		w(`<text x="%d" y="%d" font-size="12">no latency data</text>`+"\n", left, top+20)
		return top + 30
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	px := func(p float64) float64 { return left + nines(p)/4.5*width }
	py := func(ms float64) float64 {
		return float64(top+height) - (math.Log10(ms)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*height
	}
	w(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", left, top, width, height)
	for d := lo; d <= hi*1.0001; d *= 10 {
		yy := py(d)
		w(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+width, yy, yy)
		w(`<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>`+"\n", left-4, yy+3, esc(strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", d), "0"), ".")))
	}
	for _, p := range []float64{50, 90, 99, 99.9, 99.99, 100} {
		xx := px(p)
		label := fmt.Sprintf("p%g", p)
		if p == 100 {
			label = "max"
		}
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>`+"\n", xx, xx, top, top+height)
		w(`<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`+"\n", xx, top+height+14, label)
	}
	for i, s := range sums {
		var pts []string
		for _, pt := range s.CDF {
			if pt[1] > 0 && pt[0] >= 50 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(pt[0]), py(pt[1])))
			}
		}
		color := laneColor(s.Lane)
		if len(pts) > 0 {
			w(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		ly := top + 14 + 16*i
		w(`<rect x="%d" y="%d" width="12" height="3" fill="%s"/>`+"\n", left+width+10, ly-4, color)
		w(`<text x="%d" y="%d" font-size="11">%s</text>`+"\n", left+width+26, ly, esc(s.Lane))
	}
	return top + height + 30
}

// rttChart draws, per request kind and lane, the p50 round trip as a bar
// and the p99 as its paler extension, all on one linear scale, and returns
// the y below it.
func rttChart(b *bytes.Buffer, sums []summary, name string, y0 int) int {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w(`<text x="10" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", y0, esc(name+": round trip with one request in flight, p50 (bar) and p99 (pale), ms"))
	top := 0.0
	for _, s := range sums {
		for _, row := range s.RTT {
			top = max(top, row.P99)
		}
	}
	y := y0 + 6
	for _, kind := range rttKinds {
		y += 14
		w(`<text x="10" y="%d" font-size="12" font-weight="bold">%s</text>`+"\n", y, esc(kind))
		y += 4
		for _, s := range sums {
			w(`<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>`+"\n", labelWidth-6, y+barHeight-3, esc(s.Lane))
			row, ok := s.RTT[kind]
			if !ok || top <= 0 {
				w(`<text x="%d" y="%d" font-size="11" fill="#c00">error</text>`+"\n", labelWidth, y+barHeight-3)
				y += barHeight + barGap
				continue
			}
			p50 := max(1, int(math.Round(row.P50/top*barWidth)))
			p99 := max(p50, int(math.Round(row.P99/top*barWidth)))
			w(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s" fill-opacity="0.35"/>`+"\n", labelWidth, y, p99, barHeight, laneColor(s.Lane))
			w(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelWidth, y, p50, barHeight, laneColor(s.Lane))
			w(`<text x="%d" y="%d" font-size="11">%s / %s</text>`+"\n", labelWidth+p99+5, y+barHeight-3, fmtNum(row.P50, 3), fmtNum(row.P99, 3))
			y += barHeight + barGap
		}
	}
	return y + 20
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

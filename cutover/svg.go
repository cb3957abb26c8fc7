package cutover

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Charts are the report's figures as inline SVG (no scripts, no external
// resources). An empty chart is "" and the report says no evidence.
type Charts struct {
	Freshness  template.HTML // source lag at each pull, with the 6 h and 12 h limits
	Durations  template.HTML // pull durations, initial extract and deltas
	Validation template.HTML // resources received and quarantined per pull
	Timeline   template.HTML // the last rehearsal's or cutover's steps
}

// Chart geometry: a viewBox of chartW × chartH with margins for axes.
const (
	chartW, chartH           = 720.0, 240.0
	padL, padR, padT, padB   = 76.0, 16.0, 32.0, 40.0
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	colBlue, colRed, colGrey = "#1d70b8", "#d4351c", "#505a5f"
	colAmber, colGreen       = "#f47738", "#00703c"
)

func charts(ev Evidence) Charts {
	var c Charts
	var fx []time.Time
	var fy []float64
	for _, p := range ev.Pulls {
		if p.SourceFreshness != "" {
			fx, fy = append(fx, p.StartedAt), append(fy, p.SourceLag.Hours())
		}
	}
	if len(fx) > 0 {
		c.Freshness = lineChart("The DTM's lag behind the live system, read at each pull", fx, fy, []hline{{6, "6 h (S5)", colAmber}, {12, "12 h (S3)", colRed}})
	}
	var labels []string
	var secs, received, quarantined []float64
	var colours []string
	for _, p := range ev.completePulls() {
		labels = append(labels, p.StartedAt.In(dtm.London()).Format("2 Jan"))
		secs = append(secs, p.FinishedAt.Sub(p.StartedAt).Seconds())
		received = append(received, float64(p.Counts.Received))
		quarantined = append(quarantined, float64(p.Counts.Quarantined))
		col := colBlue
		if p.Since.IsZero() {
			col = colGrey
		}
		colours = append(colours, col)
	}
	if len(labels) > 0 {
		c.Durations = barChart("Pull duration in seconds (grey: the initial extract)", labels, secs, colours, nil, false)
		c.Validation = barChart("Resources received per pull, log scale (red: quarantined)", labels, logScale(received),
			repeat(colBlue, len(labels)), logScale(quarantined), true)
	}
	run, ok := ev.cutoverRun()
	if !ok {
		if rs := ev.rehearsals(); len(rs) > 0 {
			run, ok = rs[0], true
		}
	}
	if ok {
		c.Timeline = gantt(fmt.Sprintf("Run %s (%s): step durations", run.ID, run.Mode), Timeline(run))
	}
	return c
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func logScale(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Log10(1 + x)
	}
	return out
}

// hline is a horizontal threshold line.
type hline struct {
	y      float64
	label  string
	colour string
}

type svg struct{ strings.Builder }

func newSVG(title string) *svg {
	s := &svg{}
	fmt.Fprintf(s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" class="chart">`,
		chartW, chartH, html.EscapeString(title))
	fmt.Fprintf(s, `<title>%s</title>`, html.EscapeString(title))
	fmt.Fprintf(s, `<text x="%.0f" y="16" font-size="13" font-weight="bold" fill="#0b0c0c">%s</text>`, padL, html.EscapeString(title))
	fmt.Fprintf(s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s"/>`, padL, padT+plotH, padL+plotW, padT+plotH, colGrey)
	fmt.Fprintf(s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s"/>`, padL, padT, padL, padT+plotH, colGrey)
	return s
}

func (s *svg) text(x, y float64, anchor, txt string) {
	fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="11" fill="#0b0c0c">%s</text>`, x, y, anchor, html.EscapeString(txt))
}

func (s *svg) done() template.HTML {
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) // built from numbers and escaped text only
}

// yAxis draws ticks from 0 to top, labelled by label, and returns the y
// of a value. A log10 axis ticks at whole powers of ten.
func (s *svg) yAxis(top float64, label func(float64) string, log bool) func(float64) float64 {
	if top <= 0 {
		top = 1
	}
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	var ticks []float64
	if log {
		for v := 0.0; v <= top; v++ {
			ticks = append(ticks, v)
		}
	} else {
		for i := 0; i <= 4; i++ {
			ticks = append(ticks, top*float64(i)/4)
		}
	}
	for _, v := range ticks {
		s.text(padL-6, y(v)+4, "end", label(v))
		fmt.Fprintf(s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e5e5e5"/>`, padL, y(v), padL+plotW, y(v))
	}
	return y
}

func unit(u string) func(float64) string { return func(v float64) string { return trimFloat(v) + u } }

// pow10 labels a log10(1+x) axis: 0, then 10, 100, 1k, ...
func pow10(v float64) string {
	if v == 0 {
		return "0"
	}
	n := math.Pow(10, v)
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

func trimFloat(v float64) string {
	if v >= 10 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func lineChart(title string, xs []time.Time, ys []float64, lines []hline) template.HTML {
	s := newSVG(title)
	top := 0.0
	for _, v := range ys {
		top = max(top, v)
	}
	for _, l := range lines {
		top = max(top, l.y*1.1)
	}
	y := s.yAxis(top, unit("h"), false)
	t0, t1 := xs[0], xs[len(xs)-1]
	span := max(t1.Sub(t0), time.Hour)
	x := func(t time.Time) float64 { return padL + float64(t.Sub(t0))/float64(span)*plotW }
	for _, l := range lines {
		fmt.Fprintf(s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/>`, padL, y(l.y), padL+plotW, y(l.y), l.colour)
		s.text(padL+plotW-4, y(l.y)-4, "end", l.label)
	}
	var pts []string
	for i := range xs {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(xs[i]), y(ys[i])))
	}
	fmt.Fprintf(s, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colBlue, strings.Join(pts, " "))
	for i := range xs {
		fmt.Fprintf(s, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %.2f h</title></circle>`,
			x(xs[i]), y(ys[i]), colBlue, html.EscapeString(Local(xs[i])), ys[i])
	}
	s.text(padL, chartH-12, "start", Local(t0))
	s.text(padL+plotW, chartH-12, "end", Local(t1))
	return s.done()
}

// barChart draws one bar per label, and over it a second series (red)
// when over is not nil.
func barChart(title string, labels []string, vals []float64, colours []string, over []float64, log bool) template.HTML {
	s := newSVG(title)
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	label := unit("")
	if log {
		top, label = math.Ceil(top), pow10
	} else {
		top *= 1.1
	}
	y := s.yAxis(top, label, log)
	w := plotW / float64(len(vals))
	every := max(1, len(labels)/12)
	for i, v := range vals {
		x := padL + float64(i)*w
		fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x+w*0.1, y(v), w*0.8, padT+plotH-y(v), colours[i], html.EscapeString(labels[i]), trimFloat(v))
		if over != nil && over[i] > 0 {
			fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x+w*0.3, y(over[i]), w*0.4, padT+plotH-y(over[i]), colRed)
		}
		if i%every == 0 {
			s.text(x+w/2, chartH-24, "middle", labels[i])
		}
	}
	return s.done()
}

// gantt draws each step of a run as a bar from its start, on a time axis
// scaled to the run (so both seconds and hours read well).
func gantt(title string, spans []Span) template.HTML {
	s := newSVG(title)
	var t0, t1 time.Time
	for _, sp := range spans {
		if sp.Start.IsZero() {
			continue
		}
		if t0.IsZero() || sp.Start.Before(t0) {
			t0 = sp.Start
		}
		t1 = later(t1, later(sp.End, sp.Start))
	}
	total := max(t1.Sub(t0), time.Millisecond)
	row := plotH / float64(len(spans))
	for i, sp := range spans {
		yy := padT + float64(i)*row
		s.text(padL-6, yy+row*0.7, "end", sp.Step)
		if sp.Start.IsZero() {
			continue
		}
		x := padL + float64(sp.Start.Sub(t0))/float64(total)*plotW
		w := max(float64(sp.Duration)/float64(total)*plotW, 2)
		col := colGreen
		switch sp.Status {
		case dtm.StepSkipped:
			col = colGrey
		case dtm.StepFailed:
			col = colRed
		case dtm.StepRunning:
			col = colAmber
		}
		fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s, %s</title></rect>`,
			x, yy+row*0.15, w, row*0.7, col, html.EscapeString(sp.Step), sp.Status, dur(sp.Duration))
		s.text(min(x+w+4, padL+plotW-40), yy+row*0.7, "start", dur(sp.Duration))
	}
	s.text(padL, chartH-12, "start", Local(t0))
	s.text(padL+plotW, chartH-12, "end", "total "+dur(total))
	return s.done()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

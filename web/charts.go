package web

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Chart geometry, in SVG user units (the viewBox; the SVG scales to the
// width of its panel).
const (
	chartW      = 640
	chartH      = 220
	chartLeft   = 48 // room for the y labels
	chartRight  = 12
	chartTop    = 12
	chartBottom = 28 // room for the x labels
	lagCapHours = 48 // lag above this is drawn at the top

	// The target's copy lags by up to a pull interval: its chart reaches
	// past the 7-day line of T2, and caps at 9 days.
	retrieveHours     = float64(dtm.RetrieveWithin / time.Hour)
	targetLagCapHours = 9 * 24
)

// chart is an SVG chart ready for the template: every coordinate is
// computed here, so the template only places elements.
type chart struct {
	ID      string // prefix of the element ids
	Title   string // <title>: what the chart is
	Desc    string // <desc>: what it shows, in words
	W, H    int
	Plot    rect
	XTicks  []tick
	YTicks  []tick
	Lines   []hline     // threshold lines
	Points  string      // polyline "x,y x,y …" (lag chart)
	Last    *[2]float64 // the latest point, marked (lag chart)
	Bars    []bar       // bar chart
	Empty   string      // shown instead of data when there is none
	Clipped bool        // some values were above the top of the scale
}

// rect is a rectangle in chart coordinates.
type rect struct{ X, Y, W, H float64 }

// tick is one axis label with its position.
type tick struct {
	Pos   float64 // x for the x axis, y for the y axis
	Label string
}

// hline is a labelled horizontal line (the 6 h and 12 h limits).
type hline struct {
	Y     float64
	Label string
	Class string
}

// bar is one bar of a bar chart.
type bar struct {
	rect
	Label string // what it is ("Mon 2 Mar")
	Value string // its value, for the tooltip
}

func newChart(id, title string) chart {
	return chart{ID: id, Title: title, W: chartW, H: chartH,
		Plot: rect{X: chartLeft, Y: chartTop, W: chartW - chartLeft - chartRight, H: chartH - chartTop - chartBottom}}
}

// lagChart draws the lag history (hours) up to now against the 6 h and
// 12 h lines of the source (S3), or for the target's copy, against the
// 7-day line of its weekly pulls (T2).
func lagChart(id string, history []Point, now time.Time, target bool) chart {
	c := newChart(id, "Freshness lag over time")
	if len(history) == 0 {
		c.Empty = "No lag history recorded yet."
		c.Desc = c.Empty
		return c
	}
	from, to := history[0].At, now
	for _, p := range history {
		to = later(to, p.At)
	}
	if !to.After(from) {
		from = to.Add(-time.Hour)
	}
	peak, last := 0.0, history[len(history)-1].Value
	for _, p := range history {
		peak = math.Max(peak, p.Value)
	}
	top := math.Min(math.Max(14, math.Ceil(peak/2)*2+2), lagCapHours)
	if target {
		top = math.Min(math.Max(retrieveHours+12, math.Ceil(peak/12)*12+12), targetLagCapHours)
	}
	c.Clipped = peak > top
	x := func(t time.Time) float64 {
		return c.Plot.X + c.Plot.W*float64(t.Sub(from))/float64(to.Sub(from))
	}
	y := func(h float64) float64 { return c.Plot.Y + c.Plot.H*(1-math.Min(math.Max(h, 0), top)/top) }
	var pts strings.Builder
	for i, p := range history {
		if i > 0 {
			pts.WriteByte(' ')
		}
		pts.WriteString(num(x(p.At)) + "," + num(y(p.Value)))
	}
	c.Points = pts.String()
	lp := history[len(history)-1]
	c.Last = &[2]float64{x(lp.At), y(lp.Value)}
	step := niceStep(top, 7, []float64{1, 2, 3, 6, 12, 24, 48})
	for h := 0.0; h <= top+1e-9; h += step {
		c.YTicks = append(c.YTicks, tick{y(h), strconv.FormatFloat(h, 'f', -1, 64) + " h"})
	}
	c.Lines = []hline{
		{y(dtm.FreshWarnAfter.Hours()), "6 h: warning", "warn"},
		{y(dtm.FreshBreachAfter.Hours()), "12 h: breach", "breach"},
	}
	against := "against the 6 h warning and 12 h breach lines"
	if target {
		c.Lines = []hline{{y(retrieveHours), "7 days: weekly pull (T2)", "breach"}}
		against = "against the 7-day line of weekly pulls (T2)"
	}
	c.XTicks = timeTicks(from, to, x)
	c.Desc = "Lag in hours from " + fmtTime(from).Text + " to " + fmtTime(to).Text +
		", " + against + ". Latest " + fmtHours(last) + ", highest " + fmtHours(peak) + "."
	if c.Clipped {
		c.Desc += " Values above " + fmtHours(top) + " are drawn at the top."
	}
	return c
}

// changesChart draws changes per day as bars.
func changesChart(id string, days []DayCount) chart {
	c := newChart(id, "Changes per day")
	if len(days) == 0 {
		c.Empty = "No changes recorded yet."
		c.Desc = c.Empty
		return c
	}
	var peak, total int64
	for _, d := range days {
		peak, total = max(peak, d.Count), total+d.Count
	}
	top := float64(max(peak, 1))
	step := niceStep(top, 5, []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
		20000, 50000, 100000, 200000, 500000, 1000000})
	top = math.Ceil(top/step) * step
	y := func(v float64) float64 { return c.Plot.Y + c.Plot.H*(1-v/top) }
	for v := 0.0; v <= top+1e-9; v += step {
		c.YTicks = append(c.YTicks, tick{y(v), fmtCount(int64(v))})
	}
	slot := c.Plot.W / float64(len(days))
	every := max(1, int(math.Ceil(float64(len(days))/10)))
	for i, d := range days {
		label := d.Day.In(dtm.London()).Format("Mon 2 Jan")
		h := c.Plot.H * float64(d.Count) / top
		c.Bars = append(c.Bars, bar{
			rect:  rect{X: c.Plot.X + slot*float64(i) + slot*0.15, Y: c.Plot.Y + c.Plot.H - h, W: slot * 0.7, H: h},
			Label: label, Value: fmtCount(d.Count),
		})
		if (len(days)-1-i)%every == 0 {
			c.XTicks = append(c.XTicks, tick{c.Plot.X + slot*(float64(i)+0.5), d.Day.In(dtm.London()).Format("Mon 2")})
		}
	}
	c.Desc = "Changes committed per day over " + strconv.Itoa(len(days)) + " days: " + fmtCount(total) +
		" in all, at most " + fmtCount(peak) + " in a day; today so far " + fmtCount(days[len(days)-1].Count) + "."
	return c
}

// niceStep returns the smallest of steps that divides span into at most n
// intervals (the largest step when none does).
func niceStep(span float64, n int, steps []float64) float64 {
	for _, s := range steps {
		if span/s <= float64(n) {
			return s
		}
	}
	return steps[len(steps)-1]
}

// timeTicks returns labels for a time axis from `from` to `to`: at most
// seven, on whole London hours or days.
func timeTicks(from, to time.Time, x func(time.Time) float64) []tick {
	span := to.Sub(from)
	steps := []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
		24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour, 28 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	loc := dtm.London()
	l := from.In(loc)
	var t time.Time
	layout := "15:04"
	if step < 24*time.Hour {
		h := int(step / time.Hour)
		t = time.Date(l.Year(), l.Month(), l.Day(), l.Hour()/h*h, 0, 0, 0, loc)
	} else {
		t = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		layout = "Mon 2 Jan"
	}
	var ticks []tick
	for ; !t.After(to); t = advance(t, step) {
		if t.Before(from) {
			continue
		}
		label := t.Format(layout)
		if step < 24*time.Hour && t.Hour() == 0 {
			label = t.Format("Mon 2")
		}
		ticks = append(ticks, tick{x(t), label})
	}
	return ticks
}

// advance adds step to a London wall-clock time: whole days by the
// calendar (so midnight stays midnight across DST), hours by the clock.
func advance(t time.Time, step time.Duration) time.Time {
	if step >= 24*time.Hour {
		return t.AddDate(0, 0, int(step/(24*time.Hour)))
	}
	return t.Add(step)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// num formats a coordinate with at most one decimal.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

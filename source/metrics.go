package source

import (
	"context"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/prometheus/client_golang/prometheus"
)

// FreshnessCollector exports each practice's freshness as Prometheus
// metrics, read from the store at scrape time so every replica agrees.
type FreshnessCollector struct {
	Store dtm.Store
	Clock dtm.Clock

	lag, lastUpdated, watermark, state, resources *prometheus.Desc
}

// NewFreshnessCollector returns a collector over store.
func NewFreshnessCollector(store dtm.Store, clock dtm.Clock) *FreshnessCollector {
	l := []string{"practice"}
	return &FreshnessCollector{
		Store:       store,
		Clock:       clock,
		lag:         prometheus.NewDesc("dtm_source_freshness_lag_seconds", "How far the DTM data is behind the live source system.", l, nil),
		lastUpdated: prometheus.NewDesc("dtm_source_last_updated_timestamp_seconds", "When the DTM last committed a change for the practice.", l, nil),
		watermark:   prometheus.NewDesc("dtm_source_watermark_timestamp_seconds", "The source system's complete-as-of time.", l, nil),
		state:       prometheus.NewDesc("dtm_source_freshness_state", "1 for the practice's current freshness state (ok, warning, breach).", []string{"practice", "state"}, nil),
		resources:   prometheus.NewDesc("dtm_source_resources", "Live resources held, by type.", []string{"practice", "type"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *FreshnessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.lastUpdated, c.watermark, c.state, c.resources} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Store errors leave the metrics
// out of that scrape.
func (c *FreshnessCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	practices, err := c.Store.ListPractices(ctx)
	if err != nil {
		return
	}
	head, err := c.Store.Head(ctx)
	if err != nil {
		return
	}
	now := c.Clock.Now()
	for _, p := range practices {
		lag, state := dtm.Freshness(p, now)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag.Seconds(), p.ODS)
		ch <- prometheus.MustNewConstMetric(c.lastUpdated, prometheus.GaugeValue, unix(p.LastUpdated), p.ODS)
		ch <- prometheus.MustNewConstMetric(c.watermark, prometheus.GaugeValue, unix(p.Watermark), p.ODS)
		for _, s := range []string{dtm.FreshOK, dtm.FreshWarning, dtm.FreshBreach} {
			v := 0.0
			if s == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, p.ODS, s)
		}
		counts, err := c.Store.Counts(ctx, p.ODS, head.Seq)
		if err != nil {
			continue
		}
		for typ, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.resources, prometheus.GaugeValue, float64(n), p.ODS, typ)
		}
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMicro()) / 1e6
}

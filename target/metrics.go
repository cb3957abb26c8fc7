package target

import (
	"context"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/prometheus/client_golang/prometheus"
)

// SLACollector exports each practice's target SLA facts (T1, T2, T3) and
// quarantine as Prometheus metrics, read from the target state at scrape
// time. Store errors leave the metrics out of that scrape.
type SLACollector struct {
	Store dtm.Store
	State dtm.TargetState
	Clock dtm.Clock

	asOf, latency, since, ok, quarantined, last *prometheus.Desc
}

// NewSLACollector returns a collector over the target store and state.
func NewSLACollector(store dtm.Store, state dtm.TargetState, clock dtm.Clock) *SLACollector {
	l := []string{"practice"}
	return &SLACollector{
		Store: store, State: state, Clock: clock,
		asOf:        prometheus.NewDesc("dtm_target_data_as_of_timestamp_seconds", "The transactionTime the target holds the practice up to (T3).", l, nil),
		latency:     prometheus.NewDesc("dtm_target_consume_latency_seconds", "From the last pull's export being available to it being applied (T1: at most 6 h).", l, nil),
		since:       prometheus.NewDesc("dtm_target_since_last_pull_seconds", "Time since the last successful pull finished (T2: at most 7 days).", l, nil),
		ok:          prometheus.NewDesc("dtm_target_sla_ok", "1 when the requirement is met, 0 when breached.", []string{"practice", "requirement"}, nil),
		quarantined: prometheus.NewDesc("dtm_target_quarantined", "Quarantine records, by reason.", []string{"practice", "reason"}, nil),
		last:        prometheus.NewDesc("dtm_target_last_pull_resources", "What the last successful pull did with the resources it received.", []string{"practice", "outcome"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SLACollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.asOf, c.latency, c.since, c.ok, c.quarantined, c.last} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SLACollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	practices, err := c.Store.ListPractices(ctx)
	if err != nil {
		return
	}
	for _, p := range practices {
		sla, err := Report(ctx, c.State, p.ODS, c.Clock.Now())
		if err != nil {
			continue
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{p.ODS}, labels...)...)
		}
		if lp := sla.LastPull; lp.ID != "" {
			gauge(c.asOf, float64(lp.TransactionTime.UnixMicro())/1e6)
			gauge(c.latency, sla.ConsumeLatency.Seconds())
			gauge(c.since, sla.SinceLastSuccess.Seconds())
			gauge(c.last, float64(lp.Counts.Applied), "applied")
			gauge(c.last, float64(lp.Counts.Skipped), "skipped")
			gauge(c.last, float64(lp.Counts.Quarantined), "quarantined")
		}
		gauge(c.ok, bit(sla.LastPull.ID != "" && sla.T1OK), "T1")
		gauge(c.ok, bit(sla.T2OK), "T2")
		reasons := map[string]int64{}
		if err := c.State.Quarantined(ctx, p.ODS, "", func(q dtm.QuarantineRecord) error {
			reasons[q.Reason]++
			return nil
		}); err != nil {
			continue
		}
		for r, n := range reasons {
			gauge(c.quarantined, float64(n), r)
		}
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package network_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm/internal/faultproxy"
)

// randomFaults are the candidates of the random trials: every kind, every
// status with and without Retry-After, responses lost before and after the
// server acted on the request.
var randomFaults = []faultproxy.Fault{
	{Kind: faultproxy.Reset},
	{Kind: faultproxy.Reset, Forward: true},
	{Kind: faultproxy.Truncate},
	{Kind: faultproxy.Stall, Delay: proxyStall},
	{Kind: faultproxy.Slow, BytesPerSec: 256 << 10},
	{Kind: faultproxy.Status, Code: 500},
	{Kind: faultproxy.Status, Code: 502},
	{Kind: faultproxy.Status, Code: 502, Forward: true},
	{Kind: faultproxy.Status, Code: 503},
	{Kind: faultproxy.Status, Code: 503, RetryAfter: "1"},
	{Kind: faultproxy.Status, Code: 429},
	{Kind: faultproxy.Status, Code: 429, RetryAfter: "1"},
	{Kind: faultproxy.ShortLength},
	{Kind: faultproxy.LongLength},
}

// tally adds up trials and faults across parallel trials.
type tally struct {
	mu            sync.Mutex
	Trials        int            `json:"trials"`
	Pulls         int            `json:"pulls"`         // pulls that succeeded (each checked exact)
	FailedRuns    int            `json:"failedRuns"`    // Pull calls that failed and were run again
	Requests      int64          `json:"requests"`      // requests through the proxy
	Faults        map[string]int `json:"faults"`        // injected, by kind
	Resources     int64          `json:"resources"`     // resources compared at the end of each pull
	LostResources int            `json:"lostResources"` // always 0, or the test failed
}

func (t *tally) add(pulls, failed int, resources int64, p *faultproxy.Proxy) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Trials++
	t.Pulls += pulls
	t.FailedRuns += failed
	t.Resources += resources
	t.Requests += p.Requests()
	if t.Faults == nil {
		t.Faults = map[string]int{}
	}
	for k, n := range p.Counts() {
		t.Faults[k] += n
	}
}

func (t *tally) total() int {
	n := 0
	for _, v := range t.Faults {
		n += v
	}
	return n
}

// TestPull_RandomFaults pulls a practice many times through random network
// faults, with simulated activity at the source between pulls: every pull
// that returns success leaves the target exactly equal to the source, a
// pull that fails leaves the checkpoint where it was, and re-running the
// pull (it resumes) succeeds within a bounded number of runs.
func TestPull_RandomFaults(t *testing.T) {
	t.Parallel()
	trials, pulls, patients, rate := 3, 4, 6, 0.12
	if raceEnabled {
		trials, pulls, patients = 2, 3, 4
	}
	if long() {
		trials, pulls, patients, rate = 40, 6, 10, 0.15
	}
	const maxRuns = 12 // Pull calls allowed for one pull to get through
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DTM_RELIABILITY_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (DTM_RELIABILITY_SEED replays it)", seed)
	var tot tally
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for trial := range trials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s := seed + uint64(trial)
			t.Run(fmt.Sprintf("trial%02d", trial), func(t *testing.T) {
				src := mustSource(t, sourceOptions{patients: patients, seed: s, fileSize: 150, maxActive: 4,
					proxy: &faultproxy.Options{Seed: s, Random: faultproxy.Random{Rate: rate, Faults: randomFaults}}})
				tgt := mustTarget(t, src, 6)
				var ok, failed int
				var resources int64
				for pull := range pulls {
					if pull > 0 {
						if n := src.change(t, 24*time.Hour, 3, 2, pull%2); n == 0 {
							t.Fatalf("pull %d: the simulated day changed nothing", pull)
						}
					}
					before := tgt.checkpoint(t)
					var err error
					for run := 1; run <= maxRuns; run++ {
						if _, err = tgt.puller.Pull(context.Background(), ods); err == nil {
							break
						}
						failed++
						if cp := tgt.checkpoint(t); !cp.Equal(before) {
							t.Fatalf("pull %d run %d failed (%v) but the checkpoint moved from %v to %v", pull, run, err, before, cp)
						}
						t.Logf("pull %d run %d failed, run again: %v", pull, run, err)
					}
					if err != nil {
						t.Fatalf("pull %d: still failing after %d runs: %v", pull, maxRuns, err)
					}
					if !tgt.checkpoint(t).After(before) {
						t.Fatalf("pull %d succeeded but the checkpoint did not advance", pull)
					}
					rep := tgt.mustMatch(t)
					resources += rep.SourceDigest.Total
					ok++
				}
				tot.add(ok, failed, resources, src.proxy)
			})
		}()
	}
	wg.Wait()
	tot.mu.Lock()
	defer tot.mu.Unlock()
	if !t.Failed() && tot.total() == 0 {
		t.Fatal("no fault was injected")
	}
	b, _ := json.Marshal(&tot)
	t.Logf("random faults: %s", b)
	t.Logf("fault kinds: %v", slices.Sorted(maps.Keys(tot.Faults)))
	if f := os.Getenv("DTM_RELIABILITY_REPORT"); f != "" {
		os.WriteFile(f, b, 0o644)
	}
}

// pathRE are the requests of a pull, by what they do.
var (
	statusRE  = regexp.MustCompile(`^/dtm/v1/practices/[^/]+/status$`)
	kickoffRE = regexp.MustCompile(`/\$export$`)
	pollRE    = regexp.MustCompile(`^/fhir/_export/[^/]+$`)
	fileRE    = regexp.MustCompile(`^/fhir/_export/[^/]+/[^/]+$`)
)

// TestPull_PermanentFaults makes every request of one kind fail the same
// way: the pull must fail within its bounded retries with an error naming
// the cause, the checkpoint must not move, and once the network is healed
// a plain re-run must end exact.
func TestPull_PermanentFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rule faultproxy.Rule
		want []string // substrings of the error
	}{
		{"FileDownloads503", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 503}},
			[]string{"download", "giving up after 3 attempts", "503 Service Unavailable"}},
		{"FileDownloadsReset", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.Reset, At: 0.5}},
			[]string{"download", "giving up after 3 attempts", "connection reset"}},
		{"FileDownloadsTruncated", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.Truncate, At: 0.5}},
			[]string{"download", "giving up after 3 attempts", "body cut short", "unexpected EOF"}},
		{"FileDownloadsShortLength", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.5}},
			[]string{"download", "giving up after 3 attempts"}},
		{"FileDownloadsLongLength", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.LongLength}},
			[]string{"download", "giving up after 3 attempts", "unexpected EOF"}},
		{"FileDownloadsStall", faultproxy.Rule{Path: fileRE, Fault: faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: proxyStall}},
			[]string{"download", "giving up after 3 attempts", "source stalled: nothing received for " + clientStall.String()}},
		{"StatusPollStallBeforeHeaders", faultproxy.Rule{Path: pollRE, Fault: faultproxy.Fault{Kind: faultproxy.Stall, Delay: proxyStall}},
			[]string{"export status", "source stalled: nothing received for " + clientStall.String()}},
		{"StatusPollStallInManifest", faultproxy.Rule{Path: pollRE, Fault: faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: proxyStall}},
			[]string{"export status", "source stalled"}},
		{"StatusPoll500", faultproxy.Rule{Path: pollRE, Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 500}},
			[]string{"export expired or failed at the source", "500 Internal Server Error"}},
		{"StatusPoll502", faultproxy.Rule{Path: pollRE, Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 502}},
			[]string{"export status", "502 Bad Gateway"}},
		{"StatusPollTruncated", faultproxy.Rule{Path: pollRE, Fault: faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.5}},
			[]string{"export status", "manifest ends after", "in the middle of its JSON"}},
		{"KickOff429RetryAfterHour", faultproxy.Rule{Path: kickoffRE, Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 429, RetryAfter: "3600"}},
			[]string{"kick-off", "429 Too Many Requests", "retry after 1h0m0s"}},
		{"KickOff503RetryAfter", faultproxy.Rule{Path: kickoffRE, Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 503, RetryAfter: "1"}},
			[]string{"kick-off", "503 Service Unavailable", "retry after 1s"}},
		{"PracticeStatusReset", faultproxy.Rule{Path: statusRE, Fault: faultproxy.Fault{Kind: faultproxy.Reset}},
			[]string{"status"}},
	}
	sem := make(chan struct{}, 5)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			src := mustSource(t, sourceOptions{patients: 3, seed: 11, fileSize: 200, maxActive: 4, proxy: &faultproxy.Options{}})
			tgt := mustTarget(t, src, 3) // 3 attempts: a stall costs 3 × clientStall
			// A clean first pull, then a change, so that the faulted pull is a delta.
			if _, err := tgt.puller.Pull(context.Background(), ods); err != nil {
				t.Fatal(err)
			}
			tgt.mustMatch(t)
			src.change(t, 24*time.Hour, 3, 2, 1)
			before := tgt.checkpoint(t)
			src.proxy.SetRules(tc.rule)
			_, err := tgt.puller.Pull(context.Background(), ods)
			fired := src.proxy.Counts()[tc.rule.Fault.Label()]
			if err == nil {
				t.Fatalf("pull succeeded through a permanent fault (%d injected)", fired)
			}
			t.Logf("error (%d faults injected): %v", fired, err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q", w)
				}
			}
			if fired == 0 {
				t.Error("no fault was injected")
			}
			if cp := tgt.checkpoint(t); !cp.Equal(before) {
				t.Fatalf("failed pull moved the checkpoint from %v to %v", before, cp)
			}
			src.proxy.SetRules()
			res, err := tgt.puller.Pull(context.Background(), ods)
			if err != nil {
				t.Fatalf("clean re-run: %v", err)
			}
			// A fault after the export started leaves the pull resumable: the
			// re-run continues the same export rather than starting again.
			if started := tc.rule.Path == pollRE || tc.rule.Path == fileRE; started && !res.Resumed {
				t.Error("the clean re-run did not resume the failed pull")
			}
			if !tgt.checkpoint(t).After(before) {
				t.Fatal("clean re-run did not advance the checkpoint")
			}
			tgt.mustMatch(t)
		})
	}
}

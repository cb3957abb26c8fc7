package cutover

import (
	"sort"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Rule is one automatic go/no-go rule and its result.
type Rule struct {
	Name   string
	OK     bool
	NA     bool // does not apply to this run (rehearsal)
	Detail string
}

// Rules evaluates the automatic go/no-go rules of run at now: readiness
// confirmed (T6) and both statements recorded (A4), the source frozen, the
// final pull covering the freeze, the load consistent, the reconciliation
// exact, and the window still open. In a rehearsal the rules that need
// the real cutover do not apply.
func Rules(run dtm.CutoverRun, plan dtm.Plan, confs []dtm.Confirmation, now time.Time) []Rule {
	cut := run.Mode == dtm.RunCutover
	var rules []Rule
	add := func(name string, applies, ok bool, detail string) {
		rules = append(rules, Rule{Name: name, OK: ok || !applies, NA: !applies, Detail: detail})
	}
	kinds := map[string]dtm.Confirmation{}
	for _, c := range confs {
		if Verify(c) {
			kinds[c.Kind] = c
		}
	}
	conf := func(kind string) (bool, string) {
		c, ok := kinds[kind]
		if !ok {
			return false, "not recorded"
		}
		return true, "by " + c.Name + " (" + c.Organisation + ") at " + Local(c.At)
	}
	ok, d := conf(dtm.ConfirmReadiness)
	add("readiness-confirmed", cut, ok, d)
	okS, dS := conf(dtm.ConfirmSourceStatement)
	okT, dT := conf(dtm.ConfirmTargetStatement)
	add("supplier-statements", cut, okS && okT, "source: "+dS+"; target: "+dT)

	fs, _ := run.Step(StepFreeze)
	add("source-frozen", cut, fs.Status == dtm.StepDone && fs.Facts["frozen"] == "true",
		"watermark "+fs.Facts["watermark"])
	ps, _ := run.Step(StepPull)
	covers := ps.Status == dtm.StepDone &&
		!parseInstant(ps.Facts["transaction_time"]).Before(parseInstant(fs.Facts["transaction_time"]))
	add("final-pull-covers-freeze", cut, covers,
		"pull at "+ps.Facts["transaction_time"]+", frozen at "+fs.Facts["transaction_time"])
	ls, _ := run.Step(StepLoad)
	add("loaded", true, ls.Status == dtm.StepDone && ls.Facts["counts_reconcile"] == "true", "checkpoint "+ls.Facts["checkpoint"])
	rec := run.Reconcile
	switch {
	case rec == nil:
		add("reconciled-exactly", true, false, "no reconciliation")
	default:
		add("reconciled-exactly", true, rec.Match, reconcileDetail(*rec))
	}
	add("window-open", cut, now.Before(plan.GoLive), "go-live "+Local(plan.GoLive))
	return rules
}

func reconcileDetail(s dtm.ReconcileSummary) string {
	return "source " + i64(s.SourceTotal) + ", target " + i64(s.TargetTotal) + ", missing " + i64(s.Missing) +
		", extra " + i64(s.Extra) + ", different " + i64(s.Different) + ", quarantined " + i64(s.Quarantined)
}

// RuleFacts returns the rules as step facts: "automatic" is go when every
// rule passed, and "failed" lists the rules that did not.
func RuleFacts(rules []Rule) map[string]string {
	f := map[string]string{}
	var failed []string
	for _, r := range rules {
		v := "pass"
		switch {
		case r.NA:
			v = "n/a"
		case !r.OK:
			v = "fail"
			failed = append(failed, r.Name)
		}
		f["rule "+r.Name] = v + ": " + r.Detail
	}
	sort.Strings(failed)
	f["automatic"] = dtm.DecisionGo
	if len(failed) > 0 {
		f["automatic"] = dtm.DecisionNoGo
		f["failed"] = strings.Join(failed, ", ")
	}
	return f
}

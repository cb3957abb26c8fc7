package cutover

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dtm-project/dtm"
)

// ConfirmRequest is a person's signed statement about a plan.
type ConfirmRequest struct {
	Practice     string
	Kind         string // dtm.ConfirmReadiness, ConfirmSourceStatement or ConfirmTargetStatement
	Name         string
	Role         string
	Organisation string
	// Statement is the text signed; DefaultStatement(Kind, plan) when "".
	Statement string
}

// DefaultStatement returns the standard wording of a confirmation of the
// given kind for plan.
func DefaultStatement(kind string, p dtm.Plan) string {
	when := fmt.Sprintf("from %s to %s", Local(p.WindowStart), Local(p.GoLive))
	switch kind {
	case dtm.ConfirmReadiness:
		return fmt.Sprintf("On behalf of %s, the target supplier, I confirm that the data of practice %s and the DTM are fit for a weekend cutover %s.",
			p.TargetSupplier, p.Practice, when)
	case dtm.ConfirmSourceStatement:
		return fmt.Sprintf("On behalf of %s, the source supplier, I state that the weekend cutover of practice %s %s can be performed.",
			p.SourceSupplier, p.Practice, when)
	}
	return fmt.Sprintf("On behalf of %s, the target supplier, I state that the weekend cutover of practice %s %s can be performed.",
		p.TargetSupplier, p.Practice, when)
}

// Confirm assesses readiness now and records the confirmation with the
// report it was made on. It refuses, with an EConflict error, when the
// plan is not active, when the T6 deadline (14 days before the cutover
// date) has passed, or when a blocking check fails; and with an EInvalid
// error when a field is missing. The report is returned in every case
// where it was computed, so that the caller can show why.
func (s *Service) Confirm(ctx context.Context, req ConfirmRequest) (dtm.Confirmation, Report, error) {
	if !slices.Contains([]string{dtm.ConfirmReadiness, dtm.ConfirmSourceStatement, dtm.ConfirmTargetStatement}, req.Kind) {
		return dtm.Confirmation{}, Report{}, dtm.Errorf(dtm.EInvalid, "confirmation kind must be %s, %s or %s",
			dtm.ConfirmReadiness, dtm.ConfirmSourceStatement, dtm.ConfirmTargetStatement)
	}
	for name, v := range map[string]string{"name": req.Name, "role": req.Role, "organisation": req.Organisation} {
		if strings.TrimSpace(v) == "" {
			return dtm.Confirmation{}, Report{}, dtm.Errorf(dtm.EInvalid, "a confirmation needs the signer's %s", name)
		}
	}
	plan, err := s.ActivePlan(ctx, req.Practice)
	if err != nil {
		return dtm.Confirmation{}, Report{}, err
	}
	if plan.Status != dtm.PlanActive {
		return dtm.Confirmation{}, Report{}, dtm.Errorf(dtm.EConflict, "plan %s is %s", plan.ID, plan.Status)
	}
	f, err := s.Gather(ctx, plan)
	if err != nil {
		return dtm.Confirmation{}, Report{}, err
	}
	rep := Assess(f, s.Options)
	if f.Now.After(plan.ReadinessDeadline) {
		return dtm.Confirmation{}, rep, dtm.Errorf(dtm.EConflict,
			"too late: T6 requires the confirmation by %s, 14 days before the cutover of %s", Local(plan.ReadinessDeadline), plan.Date)
	}
	if b := rep.Blocking(); len(b) > 0 {
		var ids []string
		for _, c := range b {
			ids = append(ids, c.ID+" ("+c.Summary+")")
		}
		return dtm.Confirmation{}, rep, dtm.Errorf(dtm.EConflict, "not ready: %s", strings.Join(ids, "; "))
	}
	c := dtm.Confirmation{
		ID: plan.ID + "-" + req.Kind + "-" + strings.ToLower(rand.Text()[:8]), Plan: plan.ID, Practice: plan.Practice,
		Kind: req.Kind, Name: strings.TrimSpace(req.Name), Role: strings.TrimSpace(req.Role),
		Organisation: strings.TrimSpace(req.Organisation), Statement: req.Statement, At: f.Now, Report: rep.JSON(),
	}
	if strings.TrimSpace(c.Statement) == "" {
		c.Statement = DefaultStatement(req.Kind, plan)
	}
	c.Digest = Seal(c)
	if err := s.Store.AddConfirmation(ctx, c); err != nil {
		return dtm.Confirmation{}, rep, fmt.Errorf("record confirmation: %w", err)
	}
	s.log().Info("cutover confirmation recorded", "plan", plan.ID, "kind", c.Kind, "by", c.Name,
		"organisation", c.Organisation, "digest", c.Digest)
	return c, rep, nil
}

// Seal returns the hex SHA-256 over every field of c but Digest: the seal
// stored with a confirmation, which Verify recomputes.
func Seal(c dtm.Confirmation) string {
	c.Digest = ""
	b, err := json.Marshal(c)
	if err != nil { // unreachable: plain values only
		panic(fmt.Sprintf("seal confirmation: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Verify reports whether c's Digest matches its content.
func Verify(c dtm.Confirmation) bool { return c.Digest != "" && Seal(c) == c.Digest }

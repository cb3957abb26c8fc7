package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// AuthOpener returns a new, empty dtm.AuthStore. It must arrange for the
// store to be closed when t ends (t.Cleanup); the suite never closes it.
type AuthOpener func(t *testing.T) dtm.AuthStore

// RunAuth runs the conformance suite of dtm.AuthStore (clients, access
// tokens, assertion ids, audit log) against the stores open returns, one new
// store per subtest.
func RunAuth(t *testing.T, open AuthOpener) {
	t.Run("Clients", func(t *testing.T) { testAuthClients(t, open(t)) })
	t.Run("Tokens", func(t *testing.T) { testAuthTokens(t, open(t)) })
	t.Run("Replays", func(t *testing.T) { testAuthReplays(t, open(t)) })
	t.Run("ReplaysConcurrent", func(t *testing.T) { testAuthReplaysConcurrent(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAuthAudit(t, open(t)) })
	t.Run("RecordRetrieval", func(t *testing.T) { testAuthRetrieval(t, open(t)) })
	t.Run("RecordRetrievalConcurrent", func(t *testing.T) { testAuthRetrievalConcurrent(t, open(t)) })
}

// authEpoch is the time the auth suite starts at, whole microseconds so
// that every store keeps it exactly.
var authEpoch = time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC)

// authCmp compares stored values: a nil and an empty slice are the same.
var authCmp = cmpopts.EquateEmpty()

func authWantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := dtm.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func testAuthClients(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	a := dtm.Client{
		ID: "tss-b", Name: "Target B", JWKS: `{"keys":[]}`, Practices: []string{"A81001", "A81002"},
		AgreedRetrievalsPer24h: 3, AgreedBy: "J Smith (SSS)", AgreedAt: authEpoch.Add(-time.Hour),
		CreatedAt: authEpoch,
	}
	got, err := s.CreateClient(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got, authCmp); diff != "" {
		t.Errorf("CreateClient returned (-want +got):\n%s", diff)
	}
	_, err = s.CreateClient(ctx, a)
	authWantCode(t, "duplicate CreateClient", err, dtm.EConflict)
	_, err = s.CreateClient(ctx, dtm.Client{})
	authWantCode(t, "CreateClient without id", err, dtm.EInvalid)
	b := dtm.Client{ID: "ingest", Name: "Source system", JWKSURL: "https://sss.example/jwks.json", Ingest: true, CreatedAt: authEpoch}
	if _, err := s.CreateClient(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []dtm.Client{a, b} {
		got, err := s.Client(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, authCmp); diff != "" {
			t.Errorf("Client(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	_, err = s.Client(ctx, "nobody")
	authWantCode(t, "Client(nobody)", err, dtm.ENotFound)
	list, err := s.ListClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dtm.Client{b, a}, list, authCmp); diff != "" {
		t.Errorf("ListClients (-want +got):\n%s", diff)
	}

	upd := a
	upd.Name, upd.Practices, upd.Disabled, upd.AgreedRetrievalsPer24h = "Target B Ltd", []string{"A81003"}, true, 0
	upd.CreatedAt = authEpoch.Add(time.Hour) // ignored
	if err := s.UpdateClient(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.Client(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	upd.CreatedAt = a.CreatedAt
	if diff := cmp.Diff(upd, got, authCmp); diff != "" {
		t.Errorf("after UpdateClient (-want +got):\n%s", diff)
	}
	authWantCode(t, "UpdateClient(nobody)", s.UpdateClient(ctx, dtm.Client{ID: "nobody"}), dtm.ENotFound)

	tok := dtm.AccessToken{Hash: "h-a", Client: a.ID, Scopes: []string{"system/*.rs"}, IssuedAt: authEpoch, ExpiresAt: authEpoch.Add(5 * time.Minute)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, dtm.AuditEvent{Time: authEpoch, Client: a.ID, Action: dtm.AuditAdmin, Outcome: dtm.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Client(ctx, a.ID)
	authWantCode(t, "Client after DeleteClient", err, dtm.ENotFound)
	_, err = s.Token(ctx, "h-a")
	authWantCode(t, "Token of a deleted client", err, dtm.ENotFound)
	authWantCode(t, "DeleteClient twice", s.DeleteClient(ctx, a.ID), dtm.ENotFound)
	events, err := s.AuditEvents(ctx, dtm.AuditQuery{Client: a.ID})
	if err != nil || len(events) != 1 {
		t.Errorf("audit events of a deleted client = %d, %v; want 1 (the audit log is append-only)", len(events), err)
	}
}

func testAuthTokens(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	t1 := dtm.AccessToken{
		Hash: "aa", Client: "c1", Scopes: []string{"system/*.rs", "system/Patient.read"},
		Practices: []string{"A81001"}, IssuedAt: authEpoch, ExpiresAt: authEpoch.Add(5 * time.Minute),
	}
	t2 := dtm.AccessToken{Hash: "bb", Client: "c1", Scopes: []string{"dtm/ingest"}, Ingest: true,
		IssuedAt: authEpoch, ExpiresAt: authEpoch.Add(time.Minute)}
	t3 := dtm.AccessToken{Hash: "cc", Client: "c2", Scopes: []string{"system/*.rs"},
		IssuedAt: authEpoch, ExpiresAt: authEpoch.Add(10 * time.Minute)}
	for _, tok := range []dtm.AccessToken{t1, t2, t3} {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	authWantCode(t, "duplicate CreateToken", s.CreateToken(ctx, t1), dtm.EConflict)
	got, err := s.Token(ctx, "aa")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(t1, got, authCmp); diff != "" {
		t.Errorf("Token (-want +got):\n%s", diff)
	}
	_, err = s.Token(ctx, "zz")
	authWantCode(t, "Token(zz)", err, dtm.ENotFound)

	at := authEpoch.Add(time.Minute)
	if err := s.RevokeToken(ctx, "aa", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "aa", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Token(ctx, "aa"); !got.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, at)
	}
	authWantCode(t, "RevokeToken(zz)", s.RevokeToken(ctx, "zz", at), dtm.ENotFound)
	n, err := s.RevokeClientTokens(ctx, "c1", at)
	if err != nil || n != 1 {
		t.Errorf("RevokeClientTokens(c1) = %d, %v; want 1 (one was already revoked)", n, err)
	}
	if got, _ := s.Token(ctx, "cc"); !got.RevokedAt.IsZero() {
		t.Errorf("another client's token was revoked")
	}
	n, err = s.DeleteExpiredTokens(ctx, authEpoch.Add(6*time.Minute))
	if err != nil || n != 2 {
		t.Errorf("DeleteExpiredTokens = %d, %v; want 2", n, err)
	}
	if _, err := s.Token(ctx, "cc"); err != nil {
		t.Errorf("unexpired token deleted: %v", err)
	}
}

func testAuthReplays(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	exp := authEpoch.Add(6 * time.Minute)
	if err := s.UseJTI(ctx, "c1", "j1", exp, authEpoch); err != nil {
		t.Fatal(err)
	}
	authWantCode(t, "reused jti", s.UseJTI(ctx, "c1", "j1", exp, authEpoch.Add(time.Minute)), dtm.EConflict)
	authWantCode(t, "reused jti at its expiry", s.UseJTI(ctx, "c1", "j1", exp, exp), dtm.EConflict)
	if err := s.UseJTI(ctx, "c2", "j1", exp, authEpoch); err != nil {
		t.Errorf("same jti of another client: %v", err)
	}
	later := exp.Add(time.Second)
	if err := s.UseJTI(ctx, "c1", "j1", later.Add(5*time.Minute), later); err != nil {
		t.Errorf("jti after its record expired: %v", err)
	}
	n, err := s.DeleteExpiredJTIs(ctx, later)
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredJTIs = %d, %v; want 1 (c2's)", n, err)
	}
	authWantCode(t, "jti still remembered", s.UseJTI(ctx, "c1", "j1", exp, later), dtm.EConflict)
}

func testAuthReplaysConcurrent(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.UseJTI(ctx, "c1", "race", authEpoch.Add(time.Minute), authEpoch) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch dtm.ErrorCode(err) {
		case "":
			ok++
		case dtm.EConflict:
		default:
			t.Errorf("UseJTI: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent uses of one jti succeeded, want exactly 1", ok)
	}
}

func testAuthAudit(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	var want []dtm.AuditEvent
	for i, e := range []dtm.AuditEvent{
		{Client: "c1", Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess, Detail: "granted system/*.rs", Remote: "192.0.2.1"},
		{Client: "c1", Action: dtm.AuditKickoff, Practice: "A81001", Outcome: dtm.OutcomeSuccess, Job: "j1"},
		{Client: "c2", Action: dtm.AuditAccess, Outcome: dtm.OutcomeDenied, Detail: "invalid access token"},
		{Client: "c1", Action: dtm.AuditDownload, Practice: "A81001", Outcome: dtm.OutcomeSuccess, Job: "j1"},
	} {
		e.Time = authEpoch.Add(time.Duration(i) * time.Minute)
		if err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	all, err := s.AuditEvents(ctx, dtm.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("got %d events, want %d", len(all), len(want))
	}
	for i := range all {
		if i > 0 && all[i].Seq <= all[i-1].Seq {
			t.Errorf("Seq not increasing: %d then %d", all[i-1].Seq, all[i].Seq)
		}
		want[i].Seq = all[i].Seq
	}
	if diff := cmp.Diff(want, all, authCmp); diff != "" {
		t.Errorf("AuditEvents (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		q    dtm.AuditQuery
		want []int
	}{
		{"Client", dtm.AuditQuery{Client: "c1"}, []int{0, 1, 3}},
		{"Practice", dtm.AuditQuery{Practice: "A81001"}, []int{1, 3}},
		{"Action", dtm.AuditQuery{Action: dtm.AuditAccess}, []int{2}},
		{"Outcome", dtm.AuditQuery{Outcome: dtm.OutcomeSuccess}, []int{0, 1, 3}},
		{"Since", dtm.AuditQuery{Since: authEpoch.Add(time.Minute)}, []int{1, 2, 3}},
		{"Until", dtm.AuditQuery{Until: authEpoch.Add(time.Minute)}, []int{0}},
		{"AfterSeq", dtm.AuditQuery{AfterSeq: all[1].Seq}, []int{2, 3}},
		{"Limit", dtm.AuditQuery{Client: "c1", Limit: 2}, []int{0, 1}},
	} {
		got, err := s.AuditEvents(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var w []dtm.AuditEvent
		for _, i := range tc.want {
			w = append(w, want[i])
		}
		if diff := cmp.Diff(w, got, authCmp); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func testAuthRetrieval(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	kick := func(at time.Time) dtm.AuditEvent {
		return dtm.AuditEvent{Time: at, Client: "c1", Action: dtm.AuditKickoff, Practice: "A81001", Outcome: dtm.OutcomeSuccess}
	}
	// Noise that must not count: other client, practice, action, outcome.
	for _, e := range []dtm.AuditEvent{
		{Time: authEpoch, Client: "c2", Action: dtm.AuditKickoff, Practice: "A81001", Outcome: dtm.OutcomeSuccess},
		{Time: authEpoch, Client: "c1", Action: dtm.AuditKickoff, Practice: "A81002", Outcome: dtm.OutcomeSuccess},
		{Time: authEpoch, Client: "c1", Action: dtm.AuditDownload, Practice: "A81001", Outcome: dtm.OutcomeSuccess},
		{Time: authEpoch, Client: "c1", Action: dtm.AuditKickoff, Practice: "A81001", Outcome: dtm.OutcomeDenied},
	} {
		if err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2 := authEpoch.Add(time.Hour), authEpoch.Add(2*time.Hour)
	for i, at := range []time.Time{t1, t2} {
		prior, ok, err := s.RecordRetrieval(ctx, kick(at), 2, at.Add(-24*time.Hour))
		if err != nil || !ok || len(prior) != i {
			t.Fatalf("retrieval %d = %v, %v, %v; want recorded after %d", i+1, prior, ok, err, i)
		}
	}
	t3 := authEpoch.Add(3 * time.Hour)
	prior, ok, err := s.RecordRetrieval(ctx, kick(t3), 2, t3.Add(-24*time.Hour))
	if err != nil || ok {
		t.Fatalf("third retrieval = %v, %v; want refused", ok, err)
	}
	if diff := cmp.Diff([]time.Time{t1, t2}, prior, authCmp); diff != "" {
		t.Errorf("prior (-want +got):\n%s", diff)
	}
	// Exactly 24 h after t1, t1 has left the window (Time after since).
	t4 := t1.Add(24 * time.Hour)
	prior, ok, err = s.RecordRetrieval(ctx, kick(t4), 2, t4.Add(-24*time.Hour))
	if err != nil || !ok || len(prior) != 1 {
		t.Fatalf("retrieval after the window = %v, %v, %v; want recorded after 1", prior, ok, err)
	}
	n, err := s.AuditEvents(ctx, dtm.AuditQuery{Client: "c1", Practice: "A81001", Action: dtm.AuditKickoff, Outcome: dtm.OutcomeSuccess})
	if err != nil || len(n) != 3 {
		t.Errorf("recorded kick-offs = %d, %v; want 3", len(n), err)
	}
}

func testAuthRetrievalConcurrent(t *testing.T, s dtm.AuthStore) {
	ctx := context.Background()
	const n, limit = 12, 3
	var wg sync.WaitGroup
	oks := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			e := dtm.AuditEvent{Time: authEpoch.Add(time.Duration(i) * time.Second), Client: "c1",
				Action: dtm.AuditKickoff, Practice: "A81001", Outcome: dtm.OutcomeSuccess, Detail: fmt.Sprint(i)}
			_, oks[i], errs[i] = s.RecordRetrieval(ctx, e, limit, authEpoch.Add(-time.Hour))
		})
	}
	wg.Wait()
	got := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("RecordRetrieval: %v", errs[i])
		}
		if oks[i] {
			got++
		}
	}
	if got != limit {
		t.Errorf("%d concurrent retrievals recorded, want exactly the limit %d", got, limit)
	}
}

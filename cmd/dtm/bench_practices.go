package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// sizingBudget is the budget column of figures that have no budget in
// DESIGN.md but size a deployment.
const sizingBudget = "none (sizing figure)"

// manyPractices is the optional many-practices stage (--practices N): one
// source, SMART auth on, serves N generated practices to N targets, one per
// practice, each pulling its practice into its own SQLite store at the same
// time. With --practices-replicas R > 1 (PostgreSQL only) the source is R
// replicas, each with its own connection pool, behind a round-robin
// reverse proxy whose URL is every replica's base URL. It records the
// aggregate rate, the per-pull p50 and p99 times and the peak heap, and
// fails unless every target ends equal to its practice at the source.
func (b *benchRun) manyPractices(ctx context.Context) error {
	n := b.o.practices
	if n <= 0 {
		return nil
	}
	dsn := b.o.practicesDB
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(b.dir, "practices.db")
	}
	if b.o.replicas > 1 && !strings.HasPrefix(dsn, "postgres") {
		return usageError{errors.New("--practices-replicas needs a PostgreSQL --practices-db")}
	}
	st, err := store.Open(ctx, dsn, nil, b.log)
	if err != nil {
		return err
	}
	defer st.Close()
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("P%05d", i+1)
	}
	key, err := b.loadPractices(ctx, st, codes)
	if err != nil {
		return err
	}
	srvCtx, stop := context.WithCancel(ctx)
	base, wait, err := b.serveReplicas(srvCtx, dsn, st)
	if err != nil {
		stop()
		if wait != nil {
			wait()
		}
		return err
	}
	defer func() { stop(); wait() }()

	durations := make([]time.Duration, n)
	received := make([]int64, n)
	targets := make([]dtm.Store, n)
	defer func() {
		for _, t := range targets {
			if t != nil {
				t.Close()
			}
		}
	}()
	elapsed, peak, err := measure(func() error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, ods := range codes {
			wg.Go(func() {
				start := time.Now()
				targets[i], received[i], errs[i] = b.pullPractice(ctx, base, ods, key)
				durations[i] = time.Since(start)
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("%d practices: %w", n, err)
	}
	if err := checkPractices(ctx, st, targets, codes); err != nil {
		return err
	}
	var total int64
	for _, r := range received {
		total += r
	}
	slices.Sort(durations)
	p50, p99 := durations[len(durations)/2], durations[len(durations)*99/100]
	label := fmt.Sprintf("%d practices to %d targets at once", n, n)
	where := fmt.Sprintf("%s source, 1 replica", storeKind(dsn))
	if len(b.served) > 0 {
		var counts []string
		for i := range b.served {
			counts = append(counts, strconv.FormatInt(b.served[i].Load(), 10))
		}
		where = fmt.Sprintf("%s source, %d replicas (requests %s)", storeKind(dsn), len(b.served), strings.Join(counts, "/"))
	}
	validated := "no validation"
	if b.o.practicesValidate {
		validated = "UK Core validation"
	}
	b.add(label+": total", float64(total)/elapsed.Seconds(), "resources/s", sizingBudget, true, 0, peak,
		fmt.Sprintf("%d resources in %.1f s; %s; %s; every target equal to the source", total, elapsed.Seconds(), where, validated))
	b.add(label+": per-pull p50", p50.Seconds()*1000, "ms", sizingBudget, false, 0, peak,
		fmt.Sprintf("%d patients per practice; fastest %.0f ms", b.o.practicePatients, durations[0].Seconds()*1000))
	b.add(label+": per-pull p99", p99.Seconds()*1000, "ms", sizingBudget, false, 0, peak,
		fmt.Sprintf("slowest %.0f ms; process max RSS %s", durations[n-1].Seconds()*1000, maxRSS()))
	return nil
}

// loadPractices creates the practices, loads a generated practice of
// --practice-patients into each, and registers one target client per
// practice, all with the one key it returns.
func (b *benchRun) loadPractices(ctx context.Context, st dtm.Store, codes []string) (crypto.Signer, error) {
	authStore, ok := st.(dtm.AuthStore)
	if !ok {
		return nil, errors.New("store does not keep clients")
	}
	key, err := auth.GenerateKey(auth.ES384, rand.Reader)
	if err != nil {
		return nil, err
	}
	jwks, err := auth.PublicJWKS(key, auth.ES384)
	if err != nil {
		return nil, err
	}
	var loaded int
	elapsed, peak, err := measure(func() error {
		for i, ods := range codes {
			now := time.Now()
			if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: ods, CreatedAt: now}); err != nil {
				return fmt.Errorf("create practice %s (use an empty --practices-db): %w", ods, err)
			}
			in := &source.Ingester{Journal: st}
			s, err := in.LoadGenerated(ctx, ods, synth.Options{Practice: ods, Patients: b.o.practicePatients, Seed: uint64(i + 1)})
			if err != nil {
				return err
			}
			loaded += s.Applied
			if err := st.SetWatermark(ctx, ods, now); err != nil {
				return err
			}
			if _, err := authStore.CreateClient(ctx, dtm.Client{ID: "tss-" + ods, Name: "bench target " + ods,
				JWKS: string(jwks), Practices: []string{ods}, AgreedRetrievalsPer24h: 10, AgreedBy: "dtm bench",
				AgreedAt: now, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.add(fmt.Sprintf("%d practices: source ingest (%s)", len(codes), storeKind(b.o.practicesDB)), float64(loaded)/elapsed.Seconds(),
		"resources/s", sizingBudget, true, 0, peak, fmt.Sprintf("%d resources incl. generation, one practice after another", loaded))
	return key, nil
}

// serveReplicas serves st (one replica) or --practices-replicas replicas of
// dsn behind a round-robin proxy, with SMART auth, until ctx is done. It
// returns the base URL and a function that waits for every server to stop.
func (b *benchRun) serveReplicas(ctx context.Context, dsn string, st dtm.Store) (string, func(), error) {
	var wg sync.WaitGroup  // the servers
	var stores []dtm.Store // the replicas' own, closed after the servers stop
	wait := func() {
		wg.Wait()
		for _, s := range stores {
			s.Close()
		}
	}
	listen := func() (net.Listener, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		return ln, "http://" + ln.Addr().String(), nil
	}
	tlsConfig, _ := serverTLS("", "", "")
	serve := func(st dtm.Store, ln net.Listener, base string) error {
		srv, err := newSourceServer(st, dtm.SystemClock{}, b.log, base, true)
		if err != nil {
			return err
		}
		wg.Go(func() { serveHTTP(ctx, b.log, ln, srv.handler, tlsConfig, base, nil, srv.run) })
		return nil
	}
	lbLn, lbURL, err := listen()
	if err != nil {
		return "", nil, err
	}
	if b.o.replicas <= 1 {
		return lbURL, wait, serve(st, lbLn, lbURL)
	}
	var backends []*url.URL
	for range b.o.replicas {
		rst, err := store.Open(ctx, dsn, nil, b.log) // a pool of its own, as a separate process has
		if err != nil {
			lbLn.Close()
			return "", nil, err
		}
		stores = append(stores, rst)
		ln, addr, err := listen()
		if err == nil {
			err = serve(rst, ln, lbURL)
		}
		if err != nil {
			lbLn.Close()
			return "", wait, err
		}
		u, _ := url.Parse(addr)
		backends = append(backends, u)
	}
	var next atomic.Uint64
	b.served = make([]atomic.Int64, len(backends))
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := next.Add(1) % uint64(len(backends))
		b.served[i].Add(1)
		r.SetURL(backends[i])
		r.Out.Host = r.In.Host
	}}
	wg.Go(func() {
		srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		srv.Serve(lbLn)
	})
	return lbURL, wait, nil
}

// pullPractice pulls practice ods from base into a new SQLite target store
// as client tss-{ods}, and returns the store and the resources received.
func (b *benchRun) pullPractice(ctx context.Context, base, ods string, key crypto.Signer) (dtm.Store, int64, error) {
	dir := filepath.Join(b.dir, "targets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	tgt, err := sqlite.Open(ctx, filepath.Join(dir, ods+".db"), sqlite.Options{Logger: b.log})
	if err != nil {
		return nil, 0, err
	}
	kid, _ := auth.Thumbprint(key)
	creds := &auth.ClientCredentials{TokenURL: base + auth.PathToken, ClientID: "tss-" + ods, Key: key, KeyID: kid}
	client, err := target.NewClient(base, target.ClientOptions{Auth: creds, Logger: b.log, MinBackoff: 20 * time.Millisecond})
	if err != nil {
		return tgt, 0, err
	}
	cfg := target.Config{Store: tgt, State: tgt, Client: client, WorkDir: filepath.Join(b.dir, "work", ods), Logger: b.log}
	if b.o.practicesValidate {
		cfg.NewValidator = func(resolve func(string) bool) (target.Validator, error) {
			return ukcore.NewValidator(ukcore.Options{PracticeODS: ods, Resolve: resolve})
		}
	}
	p, err := target.NewPuller(cfg)
	if err != nil {
		return tgt, 0, err
	}
	res, err := p.Pull(ctx, ods)
	if err != nil {
		return tgt, 0, fmt.Errorf("pull %s: %w", ods, err)
	}
	if q := res.Counts.Quarantined; q > 0 {
		return tgt, 0, fmt.Errorf("pull %s: %d resources quarantined", ods, q)
	}
	return tgt, res.Counts.Received, nil
}

// checkPractices returns an error unless every target holds exactly its
// practice's Group scope at the source (equal digest roots).
func checkPractices(ctx context.Context, src dtm.Store, targets []dtm.Store, codes []string) error {
	srcHead, err := src.Head(ctx)
	if err != nil {
		return err
	}
	for i, ods := range codes {
		want, err := reconcile.ComputeTree(ctx, src, ods, srcHead)
		if err != nil {
			return err
		}
		head, err := targets[i].Head(ctx)
		if err != nil {
			return err
		}
		got, err := reconcile.ComputeTree(ctx, targets[i], ods, head)
		if err != nil {
			return err
		}
		if got.Digest.Root != want.Digest.Root {
			return fmt.Errorf("practice %s: target holds %d resources (root %s), source %d (root %s)",
				ods, got.Digest.Total, got.Digest.Root, want.Digest.Total, want.Digest.Root)
		}
	}
	return nil
}

// storeKind names the store of a --db URL ("" is the default SQLite).
func storeKind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "PostgreSQL"
	}
	return "SQLite"
}

// maxRSS returns the process's peak resident set size so far (VmHWM on
// Linux), or "unknown".
func maxRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return fmt.Sprintf("%d MiB", kb>>10)
			}
		}
	}
	return "unknown"
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newTargetCmd) }

func newTargetCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Run the target DTM: pull, validate and load a practice, and serve what arrived",
	}
	cmd.AddCommand(newTargetPullCmd(e), newTargetRunCmd(e), newTargetServeCmd(e))
	for _, add := range targetSubcommands {
		cmd.AddCommand(add(e))
	}
	return cmd
}

// targetSubcommands lists constructors of further "dtm target" subcommands
// (for example reconcile); their files append to it in init functions.
var targetSubcommands []func(*env) *cobra.Command

const defaultTargetDB = "sqlite:dtm-target.db"

// targetPullOptions are the flags shared by "dtm target pull" and "run".
type targetPullOptions struct {
	source, practice, db, workDir   string
	clientID, keyFile, kid, alg     string
	scope, caFile                   string
	parallel                        int
	types                           []string
	noValidate                      bool
	maxRetryAfter, minBack, maxBack time.Duration
	maxAttachment                   int64
	progress                        string
	sinks                           []string
	sinkTokenFile                   string
	sinkBatch                       int
}

// addFlags registers the pull flags on fs.
func (o *targetPullOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.source, "source", "", "the source DTM's base URL (or its FHIR base URL)")
	fs.StringVar(&o.practice, "practice", "", "ODS code of the practice")
	fs.StringVar(&o.db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	fs.StringVar(&o.workDir, "work-dir", "", "directory for downloads until they are applied (default: next to a SQLite store, else the temp dir)")
	fs.StringVar(&o.clientID, "client-id", "", "client id registered at the source (SMART Backend Services)")
	fs.StringVar(&o.keyFile, "key", "", "private key file (PEM) for --client-id")
	fs.StringVar(&o.kid, "kid", "", "key id in the registered JWKS (default: the key's thumbprint)")
	fs.StringVar(&o.alg, "alg", "", "ES384, RS384 or RS512 (default from the key)")
	fs.StringVar(&o.scope, "scope", "system/*.rs", "scope to request")
	fs.StringVar(&o.caFile, "ca-cert", "", "trust this CA certificate (PEM) too, e.g. a test environment's self-signed one")
	fs.IntVar(&o.parallel, "parallel", 4, "concurrent downloads and validation workers")
	fs.StringSliceVar(&o.types, "type", nil, "export only these resource types (_type); repeatable")
	fs.BoolVar(&o.noValidate, "no-validate", false, "load without UK Core validation (test environments only)")
	fs.DurationVar(&o.maxRetryAfter, "max-retry-after", 10*time.Minute, "longest Retry-After honoured")
	fs.DurationVar(&o.minBack, "min-backoff", 500*time.Millisecond, "first retry delay")
	fs.DurationVar(&o.maxBack, "max-backoff", 30*time.Second, "longest retry and polling delay")
	fs.Int64Var(&o.maxAttachment, "max-attachment-bytes", 64<<20, "largest attachment fetched")
	fs.StringVar(&o.progress, "progress", "auto", "progress bars per phase and type: auto (on a terminal), always or never (then a log line per phase)")
	fs.StringArrayVar(&o.sinks, "sink", nil, "also deliver every applied export to ndjson=DIR (a staging directory) or fhir=URL (a FHIR R4 server's base); repeatable")
	fs.StringVar(&o.sinkTokenFile, "sink-token-file", "", "file holding a bearer token for the fhir sink")
	fs.IntVar(&o.sinkBatch, "sink-batch-size", 100, "entries per transaction Bundle of the fhir sink")
}

func (o *targetPullOptions) check() error {
	switch {
	case o.source == "":
		return usageError{errors.New("--source is required")}
	case !dtm.ValidODS(o.practice):
		return usageError{fmt.Errorf("--practice %q is not an ODS code", o.practice)}
	case (o.clientID == "") != (o.keyFile == ""):
		return usageError{errors.New("--client-id and --key go together")}
	}
	for _, s := range o.sinks {
		kind, arg, _ := strings.Cut(s, "=")
		if (kind != "ndjson" && kind != "fhir") || arg == "" {
			return usageError{fmt.Errorf("--sink %q: want ndjson=DIR or fhir=URL", s)}
		}
	}
	return nil
}

// newSinks builds the sinks named by --sink.
func newSinks(o targetPullOptions, log *slog.Logger) ([]target.Sink, error) {
	var sinks []target.Sink
	for _, spec := range o.sinks {
		kind, arg, _ := strings.Cut(spec, "=")
		if kind == "ndjson" {
			s, err := target.NewNDJSONSink(arg)
			if err != nil {
				return nil, err
			}
			sinks = append(sinks, s)
			continue
		}
		hc, err := targetHTTPClient(o.caFile)
		if err != nil {
			return nil, err
		}
		hc.Timeout = 5 * time.Minute
		fo := target.FHIRSinkOptions{HTTP: hc, BatchSize: o.sinkBatch, Logger: log}
		if o.sinkTokenFile != "" {
			b, err := os.ReadFile(o.sinkTokenFile)
			if err != nil {
				return nil, err
			}
			fo.Token = strings.TrimSpace(string(b))
		}
		s, err := target.NewFHIRSink(arg, fo)
		if err != nil {
			return nil, usageError{fmt.Errorf("--sink %s: %w", spec, err)}
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

func newTargetPullCmd(e *env) *cobra.Command {
	var o targetPullOptions
	cmd := &cobra.Command{
		Use:   "pull --source URL --practice ODS --db URL",
		Short: "Pull a practice's changes once: export, download, validate, load, checkpoint",
		Long: `Pull brings the target store up to date with one practice at the source, once.

It checks the source's freshness (/dtm/v1/practices/{ods}/status), starts a Group
export with _since = the transactionTime of the last export it applied (none the
first time: an initial extract), polls it, downloads every output, deleted and error
file in parallel (gzip, retries, line counts and SHA-256 verified), validates every
resource against FHIR R4 and UK Core (references must resolve within the export or
the target store), loads the valid ones into the target store
with the source's versions, quarantines the invalid ones with their
OperationOutcome, verifies every DocumentReference's attachments (size and SHA-1),
delivers the export to every --sink, and only then advances its checkpoint.

Sinks feed a target system other than the built-in store, with the same
checkpoint guarantee (the target store is still loaded: it keeps the pulls,
quarantine and checkpoints). Quarantined resources are not delivered.
  --sink ndjson=DIR  stages each applied export as DIR/{ods}/{transactionTime}-{pull}/
                     with {Type}.ndjson, deleted.ndjson and manifest.json (written
                     last; the directory appears whole, by rename). Import the
                     batches in name order; see docs/OPERATIONS.md.
  --sink fhir=URL    POSTs transaction Bundles (PUT Type/id, then DELETE Type/id) of
                     --sink-batch-size entries to the FHIR R4 server at URL, retrying
                     429, 5xx and connection failures with backoff.
A sink that fails leaves the pull unfinished and the checkpoint where it was;
the next run delivers the export again (idempotently).

Killed at any moment, run it again: it resumes the same export without fetching
again the files it already verified, and reaches the same final state. If it
resumed an older export, run it once more to catch up with changes since.

Exit status 3 means the pull completed but quarantined resources or found
attachment problems: see "dtm target serve" (/dtm/v1/target/...) for details.`,
		Example: `  dtm target pull --source http://127.0.0.1:8080 --practice A81001 --db sqlite:target.db
  dtm target pull --source https://dtm.sss.example --practice A81001 --db postgres://tss@db/dtm \
      --client-id tss-b --key tss-key.pem
  dtm target pull --source http://127.0.0.1:8080 --practice A81001 --db sqlite:target.db \
      --sink ndjson=/srv/tss/staging
  dtm target pull --source http://127.0.0.1:8080 --practice A81001 --db sqlite:target.db \
      --sink fhir=https://fhir.tss.example/R4 --sink-token-file tss-fhir.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			res, err := runTargetPull(cmd.Context(), e, o)
			if err != nil {
				return err
			}
			printPull(e.stdout, res)
			return pullFindings(res)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// pullFindings returns errFindings when a completed pull kept something
// aside, so that the exit status says so.
func pullFindings(res target.PullResult) error {
	c := res.Counts
	if c.Quarantined+c.AttachmentProblems+c.SourceErrors > 0 {
		return errFindings
	}
	return nil
}

// runTargetPull opens the target store and pulls once.
func runTargetPull(ctx context.Context, e *env, o targetPullOptions) (target.PullResult, error) {
	log := e.logger()
	st, state, err := openTarget(ctx, o.db, log)
	if err != nil {
		return target.PullResult{}, err
	}
	defer st.Close()
	p, err := newPuller(ctx, e, o, st, state, log)
	if err != nil {
		return target.PullResult{}, err
	}
	res, err := p.Pull(ctx, o.practice)
	if err == nil {
		if _, _, rerr := p.ReportIssues(ctx, o.practice); rerr != nil {
			log.Warn("reporting data issues to the source", "err", rerr)
		}
	}
	return res, err
}

// openTarget opens the store named by dsn and its target state.
func openTarget(ctx context.Context, dsn string, log *slog.Logger) (dtm.Store, dtm.TargetState, error) {
	st, err := store.Open(ctx, dsn, nil, log)
	if err != nil {
		return nil, nil, err
	}
	state, ok := st.(dtm.TargetState)
	if !ok {
		st.Close()
		return nil, nil, fmt.Errorf("store %s cannot hold target state", store.Redact(dsn))
	}
	return st, state, nil
}

// newPuller builds the client (with SMART credentials when given), the
// validator and the puller.
func newPuller(ctx context.Context, e *env, o targetPullOptions, st dtm.Store, state dtm.TargetState, log *slog.Logger) (*target.Puller, error) {
	hc, err := targetHTTPClient(o.caFile)
	if err != nil {
		return nil, err
	}
	copts := target.ClientOptions{HTTP: hc, Logger: log, MaxRetryAfter: o.maxRetryAfter,
		MinBackoff: o.minBack, MaxBackoff: o.maxBack}
	if o.clientID != "" {
		if copts.Auth, err = clientCredentials(ctx, o, hc); err != nil {
			return nil, err
		}
	}
	client, err := target.NewClient(o.source, copts)
	if err != nil {
		return nil, usageError{err}
	}
	d, err := client.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.AuthRequired && copts.Auth == nil {
		return nil, usageError{errors.New("the source requires authentication: give --client-id and --key")}
	}
	log.Info("source discovered", "fhir_version", d.FHIRVersion, "software", d.Software, "auth", d.AuthRequired)
	sinks, err := newSinks(o, log)
	if err != nil {
		return nil, err
	}
	cfg := target.Config{Store: st, State: state, Client: client, WorkDir: o.workDir, Logger: log,
		Parallel: o.parallel, Types: o.types, MaxAttachmentBytes: o.maxAttachment, Sinks: sinks}
	if cfg.WorkDir == "" {
		cfg.WorkDir = defaultWorkDir(o.db)
	}
	if !o.noValidate {
		if _, err := ukcore.NewValidator(ukcore.Options{PracticeODS: o.practice}); err != nil {
			return nil, err // fail before any network traffic
		}
		cfg.NewValidator = func(resolve func(string) bool) (target.Validator, error) {
			return ukcore.NewValidator(ukcore.Options{PracticeODS: o.practice, Resolve: resolve})
		}
	}
	if o.progress == "always" || (o.progress == "auto" && isTerminal(e.stderr)) {
		cfg.Progress = newProgressBars(e.stderr)
	} else {
		cfg.Progress = newProgressLog(log)
	}
	return target.NewPuller(cfg)
}

// defaultWorkDir keeps downloads next to a SQLite store (same disk, and
// kept across reboots so that a resumed pull finds them), else in the
// temp dir.
func defaultWorkDir(dsn string) string {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return strings.TrimPrefix(path, "//") + ".work"
	}
	return os.TempDir() + "/dtm-target"
}

// targetHTTPClient returns the client's HTTP client: no overall timeout
// (downloads are long), no transparent decompression (the client handles
// gzip), TLS 1.2+, trusting caFile too when given.
func targetHTTPClient(caFile string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.ResponseHeaderTimeout = time.Minute
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, usageError{fmt.Errorf("--ca-cert %s: no certificates", caFile)}
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: t}, nil
}

// clientCredentials returns SMART Backend Services credentials for o.
func clientCredentials(ctx context.Context, o targetPullOptions, hc *http.Client) (*auth.ClientCredentials, error) {
	b, err := os.ReadFile(o.keyFile)
	if err != nil {
		return nil, err
	}
	key, err := auth.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("--key: %w", err)}
	}
	kid := o.kid
	if kid == "" {
		if kid, err = auth.Thumbprint(key); err != nil {
			return nil, err
		}
	}
	tokenHC := &http.Client{Transport: hc.Transport, Timeout: time.Minute}
	sc, err := auth.Discover(ctx, tokenHC, o.source)
	if err != nil {
		return nil, err
	}
	return &auth.ClientCredentials{TokenURL: sc.TokenEndpoint, ClientID: o.clientID, Key: key, KeyID: kid,
		Alg: o.alg, Scope: o.scope, HTTPClient: tokenHC}, nil
}

// printPull writes a pull's summary.
func printPull(w io.Writer, r target.PullResult) {
	c := r.Counts
	kind := "delta since " + r.Since.UTC().Format(time.RFC3339Nano)
	if r.Since.IsZero() {
		kind = "initial extract"
	}
	fmt.Fprintf(w, "pull %s of %s from %s: %s\n", r.ID, r.Practice, r.Source, r.Status)
	fmt.Fprintf(w, "  export       %s, transactionTime %s\n", kind, r.TransactionTime.UTC().Format(time.RFC3339Nano))
	if r.Resumed || r.Restarted {
		fmt.Fprintf(w, "  resumed      %t (export restarted: %t)\n", r.Resumed, r.Restarted)
	}
	fmt.Fprintf(w, "  resources    %d received: %d applied, %d unchanged, %d quarantined (%d deletes, %d warnings)\n",
		c.Received, c.Applied, c.Skipped, c.Quarantined, c.Deleted, c.Warnings)
	fmt.Fprintf(w, "  files        %d (%.1f MB); source errors %d\n", c.Files, float64(c.Bytes)/1e6, c.SourceErrors)
	fmt.Fprintf(w, "  attachments  %d verified, %d problems\n", c.Attachments, c.AttachmentProblems)
	if r.SourceFreshness != "" {
		fmt.Fprintf(w, "  source       freshness %s, lag %s, last updated %s\n", r.SourceFreshness,
			r.SourceLag.Round(time.Second), r.SourceLastUpdated.UTC().Format(time.RFC3339))
	}
	lat := r.ConsumeLatency()
	fmt.Fprintf(w, "  T1           consumed %s after the export was ready (limit %s): %s\n",
		lat.Round(time.Millisecond), dtm.ConsumeWithin, okWord(lat <= dtm.ConsumeWithin))
	if r.SinceLastSuccess > 0 {
		fmt.Fprintf(w, "  T2           %s since the previous successful pull (limit %s): %s\n",
			r.SinceLastSuccess.Round(time.Second), dtm.RetrieveWithin, okWord(r.SinceLastSuccess <= dtm.RetrieveWithin))
	}
	if d := r.FinishedAt.Sub(r.StartedAt); d > 0 && !r.Resumed {
		fmt.Fprintf(w, "  elapsed      %s, %.0f resources/s\n", d.Round(time.Millisecond), float64(c.Received)/d.Seconds())
	}
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "BREACH"
}

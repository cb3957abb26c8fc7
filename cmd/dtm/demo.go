package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
	"github.com/dtm-project/dtm/web"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

// demoOptions are the flags of "dtm demo".
type demoOptions struct {
	patients, weeks int
	seed            uint64
	addr, dir       string
	exit            bool
}

func newDemoCmd(e *env) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--patients N] [--weeks W] [--addr HOST:PORT] [--exit]",
		Short: "Run a whole migration on this machine: source, target, weeks of activity, and the weekend cutover",
		Long: `Run the whole story of a migration in one process, with embedded SQLite and no
configuration: generate a synthetic practice, start a source DTM and a target on
loopback with real SMART Backend Services authentication between them, plan the
cutover, take the initial extract, simulate weeks of practice activity in
accelerated virtual time with weekly pulls (each validated, reconciled, and its
findings raised with the source as data issues, which the source answers),
rehearse, confirm readiness at T-14 days, and perform the weekend cutover:
freeze, final pull, reconcile, go/no-go, go-live. Prints the story as it goes,
a summary and the dashboard URLs, then keeps serving until Ctrl-C (or exits
with --exit). Exit status 3 if the final reconciliation does not match.

Everything it writes goes to --dir (a new temporary directory by default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.patients < 1 || o.weeks < 4 {
				return usageError{errors.New("--patients must be at least 1 and --weeks at least 4 (readiness is confirmed 14 days before the cutover)")}
			}
			return runDemo(cmd.Context(), e, o)
		},
	}
	cmd.Flags().IntVar(&o.patients, "patients", 2000, "patients in the synthetic practice")
	cmd.Flags().IntVar(&o.weeks, "weeks", 4, "weeks of simulated activity before the cutover (at least 4)")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the synthetic practice and its activity")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:0", "source listen address (loopback; port 0 picks a free one)")
	cmd.Flags().StringVar(&o.dir, "dir", "", "directory for the stores and downloads (default: a new temporary directory)")
	cmd.Flags().BoolVar(&o.exit, "exit", false, "exit after the summary instead of serving until Ctrl-C")
	return cmd
}

// demoPractice is the demo practice's ODS code.
const demoPractice = "A81001"

// demoStart is the virtual start of the demo: a Monday morning.
var demoStart = time.Date(2026, time.January, 5, 9, 0, 0, 0, time.UTC)

// demo holds the running parts of a demo.
type demo struct {
	o       demoOptions
	out     io.Writer
	log     *slog.Logger
	clock   *virtualClock
	dir     string
	src     *sqlite.DB
	tgt     *sqlite.DB
	url     string
	dashes  []string // dashboard URLs: the source's, then the target's
	client  *target.Client
	puller  *target.Puller
	phases  *cutover.PhaseTimer
	svc     *cutover.Service
	feed    *source.Feed
	started time.Time
}

// treeFile keeps the target's digest tree between reconciles, so that each
// costs what the changes since the last one cost.
func (d *demo) treeFile() string { return filepath.Join(d.dir, "target.digest-tree") }

func runDemo(ctx context.Context, e *env, o demoOptions) error {
	d := &demo{o: o, out: e.stdout, log: e.logger(), clock: newVirtualClock(demoStart), started: time.Now()}
	if err := d.open(ctx); err != nil {
		return err
	}
	defer d.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr, err := d.serveSource(ctx)
	if err != nil {
		return err
	}
	if err := d.story(ctx); err != nil {
		return err
	}
	if o.exit {
		return nil
	}
	d.say("Serving until Ctrl-C. Dashboards: source %s/  target %s/", d.dashes[0], d.dashes[1])
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return err
	}
}

// say prints one line of the story with the virtual and elapsed times.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%s | %5.1fs] %s\n", d.clock.Now().In(london).Format("Mon 02 Jan 15:04"),
		time.Since(d.started).Seconds(), fmt.Sprintf(format, args...))
}

// open creates the directory and both stores, on the virtual clock.
func (d *demo) open(ctx context.Context) error {
	d.dir = d.o.dir
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "dtm-demo-")
		if err != nil {
			return err
		}
		d.dir = dir
	} else if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	quiet := d.log.With("component", "store")
	var err error
	if d.src, err = sqlite.Open(ctx, filepath.Join(d.dir, "source.db"), sqlite.Options{Clock: d.clock, Logger: quiet}); err != nil {
		return err
	}
	if d.tgt, err = sqlite.Open(ctx, filepath.Join(d.dir, "target.db"), sqlite.Options{Clock: d.clock, Logger: quiet}); err != nil {
		return err
	}
	d.svc = &cutover.Service{Store: d.tgt, State: d.tgt, Issues: d.src, Clock: d.clock, Logger: d.log}
	return nil
}

func (d *demo) close() {
	if d.src != nil {
		d.src.Close()
	}
	if d.tgt != nil {
		d.tgt.Close()
	}
}

// serveSource starts the source on loopback with SMART auth and registers
// the target supplier's client.
func (d *demo) serveSource(ctx context.Context) (<-chan error, error) {
	if err := auth.CheckLoopback(d.o.addr); err != nil {
		return nil, usageError{err}
	}
	ln, err := net.Listen("tcp", d.o.addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	d.url = "http://" + ln.Addr().String()
	srv, err := newSourceServer(d.src, d.clock, d.log, d.url, true)
	if err != nil {
		ln.Close()
		return nil, err
	}
	tlsConfig, _ := serverTLS("", "", "")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, d.log, ln, srv.handler, tlsConfig, d.url, ready, srv.run) }()
	<-ready
	dashboards := []web.Provider{sourceDashboard(d.src, d.clock, dtm.IssuePolicy{}), targetDashboard(d.tgt, d.tgt, d.clock)}
	for _, p := range dashboards {
		url, err := d.console(ctx, p)
		if err != nil {
			return nil, err
		}
		d.dashes = append(d.dashes, url)
	}
	return done, nil
}

// console serves a dashboard on its own loopback port and returns its URL.
func (d *demo) console(ctx context.Context, p web.Provider) (string, error) {
	h := web.NewHandler(p, web.Options{Clock: d.clock, Logger: d.log, Interval: time.Second})
	url, serve, err := listenConsole(ctx, d.log, "127.0.0.1:0", h)
	if err != nil {
		return "", err
	}
	go serve(ctx)
	return url, nil
}

func (d *demo) synthOptions() synth.Options {
	return synth.Options{Practice: demoPractice, Patients: d.o.patients, Seed: d.o.seed}
}

// loadPractice generates the practice straight into the source journal.
func (d *demo) loadPractice(ctx context.Context) error {
	if _, err := d.src.CreatePractice(ctx, dtm.Practice{ODS: demoPractice, Name: "Demo Surgery (synthetic)", CreatedAt: d.clock.Now()}); err != nil {
		return err
	}
	d.say("Generating a synthetic practice of %d patients into the source DTM", d.o.patients)
	start := time.Now()
	in := &source.Ingester{Journal: d.src, Logger: d.log}
	st, err := in.LoadGenerated(ctx, demoPractice, d.synthOptions())
	if err != nil {
		return err
	}
	if err := d.src.SetWatermark(ctx, demoPractice, d.clock.Now()); err != nil {
		return err
	}
	d.say("Loaded %d resources in %.1fs (%.0f resources/s)", st.Applied, time.Since(start).Seconds(), float64(st.Applied)/time.Since(start).Seconds())
	return nil
}

// registerTarget makes the target supplier's key and registers it at the
// source, with an agreement for extra retrievals around the cutover (S7),
// and builds the target's puller with those credentials.
func (d *demo) registerTarget(ctx context.Context) error {
	key, err := auth.GenerateKey(auth.ES384, rand.Reader)
	if err != nil {
		return err
	}
	jwks, err := auth.PublicJWKS(key, auth.ES384)
	if err != nil {
		return err
	}
	kid, err := auth.Thumbprint(key)
	if err != nil {
		return err
	}
	c := dtm.Client{ID: "target-supplier", Name: "Target supplier (demo)", JWKS: string(jwks),
		Practices: []string{demoPractice}, AgreedRetrievalsPer24h: 3,
		AgreedBy: "demo: both suppliers", AgreedAt: d.clock.Now(), CreatedAt: d.clock.Now()}
	if _, err := d.src.CreateClient(ctx, c); err != nil {
		return err
	}
	creds := &auth.ClientCredentials{TokenURL: d.url + auth.PathToken, ClientID: c.ID, Key: key, KeyID: kid, Clock: d.clock}
	client, err := target.NewClient(d.url, target.ClientOptions{Auth: creds, Clock: d.clock, Logger: d.log})
	if err != nil {
		return err
	}
	v, err := ukcore.NewValidator(ukcore.Options{Now: d.clock.Now, PracticeODS: demoPractice})
	if err != nil {
		return err
	}
	d.client = client
	d.phases = &cutover.PhaseTimer{Clock: d.clock}
	d.puller, err = target.NewPuller(target.Config{Store: d.tgt, State: d.tgt, Client: client, Validator: v,
		WorkDir: filepath.Join(d.dir, "work"), Clock: d.clock, Logger: d.log, Progress: d.phases})
	if err != nil {
		return err
	}
	d.say("Registered the target supplier's ES384 key at the source (kid %.12s…)", kid)
	return nil
}

// pull runs one target pull and reports it.
func (d *demo) pull(ctx context.Context) (target.PullResult, error) {
	start := time.Now()
	res, err := d.puller.Pull(ctx, demoPractice)
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}
	c := res.Counts
	d.say("Pulled %d resources (%d deletes): %d applied, %d quarantined, %d warnings, %d attachments verified, in %.1fs (%.0f/s)",
		c.Received, c.Deleted, c.Applied, c.Quarantined, c.Warnings, c.Attachments,
		time.Since(start).Seconds(), float64(c.Received)/time.Since(start).Seconds())
	return res, nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// sourceServeOptions are the flags of "dtm source serve".
type sourceServeOptions struct {
	db, addr, auth, baseURL, tlsCert, tlsKey, clientCA string
	dashboardAddr                                      string
	exportWorkers                                      int       // export planning goroutines; 0: bulk.DefaultWorkers
	clock                                              dtm.Clock // nil: the system clock
}

func newSourceServeCmd(e *env) *cobra.Command {
	var o sourceServeOptions
	cmd := &cobra.Command{
		Use:   "serve --db URL --addr HOST:PORT",
		Short: "Serve the practices in a source store as FHIR Bulk Data, 24/7",
		Long: `Serve FHIR R4 Bulk Data ($export at /fhir/Group/{ods}/$export, /fhir/Patient/$export
and /fhir/$export), /fhir/Binary/{id}, /fhir/metadata, the control plane under
/dtm/v1/ (practice status and freshness, ingest, watermark), SMART Backend
Services authorisation (/.well-known/smart-configuration and /auth/token),
Prometheus metrics at /metrics, and /healthz and /readyz. See docs/API.md and
docs/SECURITY.md.

--auth smart (the default) requires a bearer token from /auth/token on every
request but discovery, metadata and health checks; register target suppliers
and the source system's ingest client with "dtm source clients add". --auth none
turns authentication off: for local test environments only, it refuses any
address that is not loopback and logs a warning.

The dashboard (freshness, changes, retrievals, data issues; aggregates only, no
patient data) is at / with --auth none. With --auth smart, which browsers cannot
use, it is served on --dashboard-addr, a separate listener that must be loopback:
reach it over SSH or your VPN.

Serve TLS with --tls-cert and --tls-key (TLS 1.2 minimum; "dtm auth cert" makes
a self-signed pair for a test environment); --tls-client-ca also requires client
certificates (mutual TLS).

Stops gracefully on SIGINT or SIGTERM: no new requests, in-flight downloads finish
(up to 30 s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSourceServe(cmd.Context(), e, o, nil)
		},
	}
	cmd.Flags().StringVar(&o.db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address HOST:PORT (port 0 picks a free one)")
	cmd.Flags().StringVar(&o.auth, "auth", "smart", "authentication: smart (SMART Backend Services) or none (loopback test environments only)")
	cmd.Flags().StringVar(&o.baseURL, "base-url", "", "public base URL used in Content-Location, manifests and the token audience (default from --addr)")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); TLS 1.2 minimum")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	cmd.Flags().StringVar(&o.dashboardAddr, "dashboard-addr", "", "with --auth smart, serve the dashboard on this separate loopback address (an operator console: browsers carry no bearer token)")
	cmd.Flags().StringVar(&o.clientCA, "tls-client-ca", "", "CA certificates (PEM) that client certificates must chain to: mutual TLS")
	cmd.Flags().IntVar(&o.exportWorkers, "export-workers", bulk.DefaultWorkers, "exports this replica plans at a time (each reads the practice's journal headers); queued kick-offs wait for one")
	return cmd
}

// runSourceServe serves until ctx is done. When ready is not nil it receives
// the base URL once the listener is open (tests and the demo use it).
func runSourceServe(ctx context.Context, e *env, o sourceServeOptions, ready chan<- string) error {
	log := e.logger()
	if o.auth != "smart" && o.auth != "none" {
		return usageError{fmt.Errorf("--auth %q: want smart or none", o.auth)}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if o.exportWorkers < 0 {
		return usageError{fmt.Errorf("--export-workers %d: want at least 1 (0 for the default, %d)", o.exportWorkers, bulk.DefaultWorkers)}
	}
	if o.auth == "none" {
		if err := auth.CheckLoopback(o.addr); err != nil {
			return usageError{err}
		}
		log.Warn("authentication is off (--auth none): for local test environments only")
	}
	clock := o.clock
	if clock == nil {
		clock = dtm.SystemClock{}
	}
	tlsConfig, err := serverTLS(o.tlsCert, o.tlsKey, o.clientCA)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	st, err := store.Open(ctx, o.db, clock, log)
	if err != nil {
		return err
	}
	defer st.Close()
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	baseURL := strings.TrimRight(o.baseURL, "/")
	if baseURL == "" {
		baseURL = scheme + "://" + ln.Addr().String()
	}
	srv, err := newSourceServerWorkers(st, clock, log, baseURL, o.auth == "smart", o.exportWorkers)
	if err != nil {
		return err
	}
	dash := web.NewHandler(sourceDashboard(st, clock, dtm.IssuePolicy{}), web.Options{Clock: clock, Logger: log})
	run := srv.run
	switch {
	case o.auth == "none":
		mountDashboard(ctx, srv.mux, dash)
	case o.dashboardAddr != "":
		_, console, err := listenConsole(ctx, log, o.dashboardAddr, dash)
		if err != nil {
			return err
		}
		run = func(ctx context.Context) error {
			go console(ctx)
			return srv.run(ctx)
		}
	}
	return serveHTTP(ctx, log, ln, srv.handler, tlsConfig, baseURL, ready, run)
}

// listenConsole opens a loopback listener for a dashboard outside the auth
// middleware and returns its URL and the function that serves it until ctx
// is done.
func listenConsole(ctx context.Context, log *slog.Logger, addr string, dash *web.Handler) (string, func(context.Context) error, error) {
	if err := auth.CheckLoopback(addr); err != nil {
		return "", nil, usageError{fmt.Errorf("--dashboard-addr: %w", err)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("dashboard listen: %w", err)
	}
	mux := http.NewServeMux()
	mountDashboard(ctx, mux, dash)
	url := "http://" + ln.Addr().String()
	log.Info("dashboard", "url", url+"/")
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	return url, func(ctx context.Context) error {
		return serveHTTP(ctx, log, ln, auth.AllowAll(mux), &tls.Config{}, url, nil, idle)
	}, nil
}

// serverTLS returns the TLS configuration for --tls-cert, --tls-key and
// --tls-client-ca: TLS 1.2 minimum, and no certificate when cert is "".
func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	return auth.ServerTLSConfig(cert, key, clientCA)
}

// sourceServer is the composed source: Bulk Data, control plane, auth,
// metrics and health, over one store.
type sourceServer struct {
	mux     *http.ServeMux
	handler http.Handler                // mux behind the auth middleware
	run     func(context.Context) error // background work: export planning, token pruning
}

// newSourceServer composes the source's handlers. With smartAuth false every
// request gets full rights (--auth none).
func newSourceServer(st dtm.Store, clock dtm.Clock, log *slog.Logger, baseURL string, smartAuth bool) (*sourceServer, error) {
	return newSourceServerWorkers(st, clock, log, baseURL, smartAuth, 0)
}

// newSourceServerWorkers is newSourceServer with workers export planning
// goroutines (bulk.DefaultWorkers when 0).
func newSourceServerWorkers(st dtm.Store, clock dtm.Clock, log *slog.Logger, baseURL string, smartAuth bool, workers int) (*sourceServer, error) {
	jobs, ok := st.(dtm.ExportJobs)
	authStore, ok2 := st.(dtm.AuthStore)
	if !ok || !ok2 {
		return nil, errors.New("store does not keep export jobs and clients")
	}
	mux := http.NewServeMux()
	bcfg := bulk.Config{Journal: st, Practices: st, Jobs: jobs, BaseURL: baseURL, Clock: clock, Logger: log,
		Workers: workers}
	var authSrv *auth.Server
	if smartAuth {
		var err error
		authSrv, err = auth.New(auth.Config{Store: authStore, TokenURL: baseURL + auth.PathToken, Clock: clock, Logger: log})
		if err != nil {
			return nil, err
		}
		authSrv.Register(mux)
		bcfg.RequiresAccessToken = true
		bcfg.Audit = authSrv
		bcfg.AllowRetrieval = authSrv.AllowRetrieval
	}
	bs := bulk.NewServer(bcfg)
	mux.Handle("/fhir/", bs.Handler())
	ctl := &source.Handler{Store: st, Ingester: &source.Ingester{Journal: st, Logger: log}, Clock: clock, Logger: log}
	ctl.Routes(mux)
	ctl.IssueRoutes(mux)
	ctl.FreezeRoutes(mux)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		source.NewFreshnessCollector(st, clock))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := st.Head(r.Context()); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s := &sourceServer{mux: mux, handler: auth.AllowAll(mux), run: bs.Run}
	if authSrv != nil {
		s.handler = authSrv.Middleware(mux)
		s.run = func(ctx context.Context) error {
			go authSrv.Run(ctx)
			return bs.Run(ctx)
		}
	}
	return s, nil
}

// serveHTTP serves handler on ln (TLS when cert and key are given) and runs
// background alongside, until ctx is done; then it shuts down gracefully.
func serveHTTP(ctx context.Context, log *slog.Logger, ln net.Listener, handler http.Handler,
	tlsConfig *tls.Config, baseURL string, ready chan<- string, background func(context.Context) error) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bgDone := make(chan error, 1)
	go func() { bgDone <- background(ctx) }()
	serveErr := make(chan error, 1)
	go func() {
		if len(tlsConfig.Certificates) > 0 || tlsConfig.GetCertificate != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	log.Info("serving", "url", baseURL, "pid", os.Getpid())
	if ready != nil {
		ready <- baseURL
	}
	select {
	case err := <-serveErr:
		cancel()
		<-bgDone
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	err := srv.Shutdown(shutCtx)
	if bgErr := <-bgDone; bgErr != nil && !errors.Is(bgErr, context.Canceled) {
		log.Error("background work stopped with an error", "err", bgErr)
	}
	return err
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

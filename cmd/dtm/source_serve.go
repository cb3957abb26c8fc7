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
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// sourceServeOptions are the flags of "dtm source serve".
type sourceServeOptions struct {
	db, addr, auth, baseURL, tlsCert, tlsKey string
}

func newSourceServeCmd(e *env) *cobra.Command {
	var o sourceServeOptions
	cmd := &cobra.Command{
		Use:   "serve --db URL --addr HOST:PORT",
		Short: "Serve the practices in a source store as FHIR Bulk Data, 24/7",
		Long: `Serve FHIR R4 Bulk Data ($export at /fhir/Group/{ods}/$export, /fhir/Patient/$export
and /fhir/$export), /fhir/Binary/{id}, /fhir/metadata, the control plane under
/dtm/v1/ (practice status and freshness, ingest, watermark), Prometheus metrics at
/metrics, and /healthz and /readyz. See docs/API.md.

--auth none turns authentication off. It exists for local test environments only:
it refuses any address that is not loopback and logs a warning. SMART Backend
Services authentication is being built (issue 5); until it lands, --auth none is
the only mode.

Stops gracefully on SIGINT or SIGTERM: no new requests, in-flight downloads finish
(up to 30 s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSourceServe(cmd.Context(), e, o, nil)
		},
	}
	cmd.Flags().StringVar(&o.db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address HOST:PORT (port 0 picks a free one)")
	cmd.Flags().StringVar(&o.auth, "auth", "none", "authentication: none (loopback test environments only)")
	cmd.Flags().StringVar(&o.baseURL, "base-url", "", "public base URL used in Content-Location and manifests (default from --addr)")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); TLS 1.2 minimum")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	return cmd
}

// runSourceServe serves until ctx is done. When ready is not nil it receives
// the base URL once the listener is open (tests and the demo use it).
func runSourceServe(ctx context.Context, e *env, o sourceServeOptions, ready chan<- string) error {
	log := e.logger()
	if o.auth != "none" {
		return usageError{fmt.Errorf("--auth %q: only \"none\" is available in this version", o.auth)}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if !isLoopback(ln.Addr()) {
		return usageError{fmt.Errorf("--auth none refuses the non-loopback address %s", ln.Addr())}
	}
	log.Warn("authentication is off (--auth none): for local test environments only")
	st, err := store.Open(ctx, o.db, dtm.SystemClock{}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs, ok := st.(dtm.ExportJobs)
	if !ok {
		return errors.New("store does not keep export jobs")
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	baseURL := o.baseURL
	if baseURL == "" {
		baseURL = scheme + "://" + ln.Addr().String()
	}
	clock := dtm.SystemClock{}
	bs := bulk.NewServer(bulk.Config{
		Journal: st, Practices: st, Jobs: jobs, BaseURL: baseURL, Clock: clock, Logger: log,
		Caller: func(r *http.Request) (string, []string) { return "", []string{dtm.AllPractices} },
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", bs.Handler())
	ctl := &source.Handler{Store: st, Ingester: &source.Ingester{Journal: st, Logger: log}, Clock: clock, Logger: log}
	ctl.Routes(mux)
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
	handler := allowAll(mux)
	return serveHTTP(ctx, log, ln, handler, o.tlsCert, o.tlsKey, baseURL, ready, bs.Run)
}

// allowAll marks every request as coming from a principal with full rights:
// the --auth none mode.
func allowAll(next http.Handler) http.Handler {
	p := dtm.Principal{Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), p)))
	})
}

// serveHTTP serves handler on ln (TLS when cert and key are given) and runs
// background alongside, until ctx is done; then it shuts down gracefully.
func serveHTTP(ctx context.Context, log *slog.Logger, ln net.Listener, handler http.Handler,
	cert, key, baseURL string, ready chan<- string, background func(context.Context) error) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bgDone := make(chan error, 1)
	go func() { bgDone <- background(ctx) }()
	serveErr := make(chan error, 1)
	go func() {
		if cert != "" || key != "" {
			serveErr <- srv.ServeTLS(ln, cert, key)
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

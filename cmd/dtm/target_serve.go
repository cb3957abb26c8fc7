package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// targetServeOptions are the flags of "dtm target serve".
type targetServeOptions struct {
	db, addr, baseURL, tlsCert, tlsKey string
	remote                             bool
}

func newTargetServeCmd(e *env) *cobra.Command {
	var o targetServeOptions
	cmd := &cobra.Command{
		Use:   "serve --db URL --addr HOST:PORT",
		Short: "Serve the migrated records as a read-only FHIR API, with the target's status",
		Long: `Serve a read-only FHIR R4 API over the target store so that testers and clinicians
can look at what arrived:

  GET /fhir/{type}/{id}                                   read, exactly as received
  GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N
  GET /fhir/Patient/{id}/$everything                      the patient's compartment
  GET /fhir/{type}?patient={id}                           e.g. Observation, Condition, MedicationRequest
  GET /fhir/metadata
  GET /dtm/v1/target/practices/{ods}                      SLA (T1, T2), freshness, pulls, counts
  GET /dtm/v1/target/practices/{ods}/quarantine           quarantined resources with OperationOutcomes (NDJSON)
  GET /metrics                                            Prometheus: dtm_target_* SLA gauges (T1, T2, T3), quarantine

The API has no authentication and serves patient data: it listens on loopback
addresses only, unless --insecure-remote is given (then put it behind an
authenticating proxy). See docs/API.md.`,
		Example: `  dtm target serve --db sqlite:target.db --addr 127.0.0.1:8081`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTargetServe(cmd.Context(), e, o, nil)
		},
	}
	cmd.Flags().StringVar(&o.db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8081", "listen address HOST:PORT (port 0 picks a free one)")
	cmd.Flags().StringVar(&o.baseURL, "base-url", "", "public base URL for Bundle fullUrls (default from --addr)")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	cmd.Flags().BoolVar(&o.remote, "insecure-remote", false, "allow a non-loopback address (no authentication!)")
	return cmd
}

// runTargetServe serves until ctx is done; ready, when not nil, receives
// the base URL once listening.
func runTargetServe(ctx context.Context, e *env, o targetServeOptions, ready chan<- string) error {
	log := e.logger()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if !isLoopback(ln.Addr()) {
		if !o.remote {
			return usageError{fmt.Errorf("refusing the non-loopback address %s without --insecure-remote", ln.Addr())}
		}
		log.Warn("serving patient data without authentication on a non-loopback address")
	}
	st, state, err := openTarget(ctx, o.db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	baseURL := o.baseURL
	if baseURL == "" {
		scheme := "http"
		if o.tlsCert != "" {
			scheme = "https"
		}
		baseURL = scheme + "://" + ln.Addr().String()
	}
	api := target.NewServer(target.ServerConfig{Store: st, State: state, BaseURL: baseURL, Logger: log})
	mux := http.NewServeMux()
	mux.Handle("/", api.Handler())
	mountDashboard(ctx, mux, web.NewHandler(targetDashboard(st, state, dtm.SystemClock{}), web.Options{Logger: log}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		target.NewSLACollector(st, state, dtm.SystemClock{}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	tlsConfig, err := serverTLS(o.tlsCert, o.tlsKey, "")
	if err != nil {
		return err
	}
	return serveHTTP(ctx, log, ln, mux, tlsConfig, baseURL, ready, idle)
}

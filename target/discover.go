package target

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Discovery is what the source says about itself.
type Discovery struct {
	// AuthRequired is true when the source publishes a SMART configuration;
	// false when /.well-known/smart-configuration is absent (--auth none).
	AuthRequired  bool
	TokenEndpoint string
	// TokenAuthMethods, Scopes and GrantTypes are from the SMART
	// configuration.
	TokenAuthMethods []string
	Scopes           []string
	GrantTypes       []string
	// FHIRVersion is the CapabilityStatement's fhirVersion (4.0.1 for R4).
	FHIRVersion string
	// Software is the CapabilityStatement's software.name and version.
	Software string
	// Export is true when the CapabilityStatement names an export
	// operation.
	Export bool
}

type smartConfig struct {
	TokenEndpoint    string   `json:"token_endpoint"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	Scopes           []string `json:"scopes_supported"`
	GrantTypes       []string `json:"grant_types_supported"`
}

type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  string `json:"fhirVersion"`
	Software     struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"software"`
	Rest []struct {
		Operation []struct {
			Name string `json:"name"`
		} `json:"operation"`
		Resource []struct {
			Type      string `json:"type"`
			Operation []struct {
				Name string `json:"name"`
			} `json:"operation"`
		} `json:"resource"`
	} `json:"rest"`
}

// Discover reads the source's SMART configuration (a 404 is tolerated: the
// source runs without authentication) and its CapabilityStatement. It
// returns an ENotSupported error when the source is not FHIR R4.
func (c *Client) Discover(ctx context.Context) (Discovery, error) {
	var d Discovery
	var sc smartConfig
	err := c.getJSON(ctx, "smart configuration", c.root.JoinPath(".well-known", "smart-configuration").String(), false, &sc)
	if err == nil {
		d.AuthRequired, d.TokenEndpoint = true, sc.TokenEndpoint
		d.TokenAuthMethods, d.Scopes, d.GrantTypes = sc.TokenAuthMethods, sc.Scopes, sc.GrantTypes
	} else if dtm.ErrorCode(err) != dtm.ENotFound {
		return Discovery{}, fmt.Errorf("discover: %w", err)
	}
	var cs capabilityStatement
	if err := c.getJSON(ctx, "capability statement", c.fhir.JoinPath("metadata").String(), false, &cs); err != nil {
		return Discovery{}, fmt.Errorf("discover: %w", err)
	}
	if cs.ResourceType != "CapabilityStatement" || !strings.HasPrefix(cs.FHIRVersion, "4.0") {
		return Discovery{}, dtm.Errorf(dtm.ENotSupported, "discover: the source is not a FHIR R4 server")
	}
	d.FHIRVersion = cs.FHIRVersion
	d.Software = strings.TrimSpace(cs.Software.Name + " " + cs.Software.Version)
	for _, r := range cs.Rest {
		for _, op := range r.Operation {
			d.Export = d.Export || strings.HasSuffix(op.Name, "export")
		}
		for _, res := range r.Resource {
			for _, op := range res.Operation {
				d.Export = d.Export || strings.HasSuffix(op.Name, "export")
			}
		}
	}
	return d, nil
}

// SourceStatus is the source's report on one practice's DTM data
// (GET /dtm/v1/practices/{ods}/status; requirements S4 and T3).
type SourceStatus struct {
	Practice string
	// LastUpdated is the last commit that changed the practice's data.
	LastUpdated time.Time
	// SourceWatermark is the source system's "complete as of" time.
	SourceWatermark time.Time
	// Lag is how far the DTM is behind the live system, and Freshness its
	// state: dtm.FreshOK, FreshWarning or FreshBreach.
	Lag       time.Duration
	Freshness string
	// TransactionTime is what an export started now would report.
	TransactionTime time.Time
	// Counts are the live resources per type.
	Counts map[string]int64
}

type statusJSON struct {
	Practice        string           `json:"practice"`
	ODS             string           `json:"ods"`
	LastUpdated     string           `json:"lastUpdated"`
	SourceWatermark string           `json:"sourceWatermark"`
	LagSeconds      float64          `json:"lagSeconds"`
	Freshness       string           `json:"freshness"`
	TransactionTime string           `json:"transactionTime"`
	Counts          map[string]int64 `json:"counts"`
}

// Status reads the source's status of the practice. It returns an
// ENotFound error for a practice the source does not hold (or does not let
// this client see).
func (c *Client) Status(ctx context.Context, practice string) (SourceStatus, error) {
	if !dtm.ValidODS(practice) {
		return SourceStatus{}, dtm.Errorf(dtm.EInvalid, "status: invalid ODS code")
	}
	var sj statusJSON
	u := c.root.JoinPath("dtm", "v1", "practices", url.PathEscape(practice), "status").String()
	if err := c.getJSON(ctx, "source status", u, true, &sj); err != nil {
		return SourceStatus{}, err
	}
	st := SourceStatus{
		Practice:  practice,
		Lag:       time.Duration(sj.LagSeconds * float64(time.Second)),
		Freshness: sj.Freshness,
		Counts:    sj.Counts,
	}
	var errs []error
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&st.LastUpdated, sj.LastUpdated}, {&st.SourceWatermark, sj.SourceWatermark}, {&st.TransactionTime, sj.TransactionTime}} {
		t, err := parseInstant(f.src)
		*f.dst = t
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return SourceStatus{}, fmt.Errorf("source status: %w", err)
	}
	return st, nil
}

// parseInstant parses a FHIR instant (RFC 3339 with optional fraction); ""
// is the zero time.
func parseInstant(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, dtm.Errorf(dtm.EInvalid, "invalid instant %q", s)
	}
	return t.UTC(), nil
}

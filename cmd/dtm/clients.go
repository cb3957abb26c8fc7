package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/store"
	"github.com/spf13/cobra"
)

func init() { sourceSubcommands = append(sourceSubcommands, newClientsCmd, newAuditCmd) }

// authStore is a store that also keeps clients, tokens and the audit log.
type authStore interface {
	dtm.Store
	dtm.AuthStore
}

// openAuthStore opens the store named by dsn. The caller closes it.
func openAuthStore(ctx context.Context, e *env, dsn string) (authStore, error) {
	st, err := store.Open(ctx, dsn, dtm.SystemClock{}, e.logger())
	if err != nil {
		return nil, err
	}
	as, ok := st.(authStore)
	if !ok {
		st.Close()
		return nil, errors.New("this store does not keep clients")
	}
	return as, nil
}

// operator names the person running an admin command, for the audit log.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// recordAdmin audits an admin change.
func recordAdmin(ctx context.Context, st dtm.Audit, detail string) error {
	return st.Record(ctx, dtm.AuditEvent{Time: time.Now(), Client: operator(), Action: dtm.AuditAdmin,
		Outcome: dtm.OutcomeSuccess, Detail: detail})
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$`)

// clientFlags are the registration flags shared by add and update.
type clientFlags struct {
	name, jwksFile, jwksURL, agreedBy, agreedAt string
	practices                                   []string
	ingest                                      bool
	retrievals                                  int
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "organisation name")
	fl.StringVar(&f.jwksFile, "jwks", "", "file holding the client's public JWK Set (from dtm auth keygen)")
	fl.StringVar(&f.jwksURL, "jwks-url", "", "https URL where the client publishes its JWK Set")
	fl.StringSliceVar(&f.practices, "practice", nil, "ODS code of a practice the client may read (repeatable)")
	fl.BoolVar(&f.ingest, "ingest", false, "the source system's own ingest credentials (scope "+auth.ScopeIngest+")")
	fl.IntVar(&f.retrievals, "retrievals-per-24h", 0, "agreed export kick-offs per practice per rolling 24 h (default 1)")
	fl.StringVar(&f.agreedBy, "agreed-by", "", "who agreed --retrievals-per-24h (required with it)")
	fl.StringVar(&f.agreedAt, "agreed-at", "", "when it was agreed, YYYY-MM-DD or RFC 3339 (default now)")
}

// apply sets the fields of c given on the command line and checks the
// result. It returns a usageError for bad values.
func (f *clientFlags) apply(cmd *cobra.Command, c *dtm.Client) error {
	fl := cmd.Flags()
	if fl.Changed("name") {
		c.Name = f.name
	}
	if fl.Changed("jwks") && fl.Changed("jwks-url") {
		return usageError{errors.New("give --jwks or --jwks-url, not both")}
	}
	if fl.Changed("jwks") {
		b, err := os.ReadFile(f.jwksFile)
		if err != nil {
			return err
		}
		keys, err := auth.ParseJWKS(b)
		if err != nil {
			return usageError{fmt.Errorf("--jwks %s: %w", f.jwksFile, err)}
		}
		if len(keys) == 0 {
			return usageError{fmt.Errorf("--jwks %s: no usable RSA (2048 bits or more) or EC key", f.jwksFile)}
		}
		c.JWKS, c.JWKSURL = string(b), ""
	}
	if fl.Changed("jwks-url") {
		u, err := url.Parse(f.jwksURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return usageError{fmt.Errorf("--jwks-url must be an https URL")}
		}
		c.JWKS, c.JWKSURL = "", f.jwksURL
	}
	if fl.Changed("practice") {
		c.Practices = nil
		for _, p := range f.practices {
			if !dtm.ValidODS(p) {
				return usageError{fmt.Errorf("--practice: %q is not an ODS code", p)}
			}
			if !slices.Contains(c.Practices, p) {
				c.Practices = append(c.Practices, p)
			}
		}
	}
	if fl.Changed("ingest") {
		c.Ingest = f.ingest
	}
	if fl.Changed("retrievals-per-24h") {
		if f.retrievals < 1 {
			return usageError{errors.New("--retrievals-per-24h must be at least 1")}
		}
		if f.agreedBy == "" {
			return usageError{errors.New("--retrievals-per-24h needs --agreed-by: extra retrievals must be agreed beforehand (S7)")}
		}
		at := time.Now().UTC()
		if f.agreedAt != "" {
			var err error
			if at, err = parseDate(f.agreedAt); err != nil {
				return usageError{fmt.Errorf("--agreed-at: %w", err)}
			}
		}
		c.AgreedRetrievalsPer24h, c.AgreedBy, c.AgreedAt = f.retrievals, f.agreedBy, at
	}
	if c.JWKS == "" && c.JWKSURL == "" {
		return usageError{errors.New("the client needs keys: --jwks FILE or --jwks-url URL")}
	}
	if len(c.Practices) == 0 {
		return usageError{errors.New("the client needs at least one --practice")}
	}
	return nil
}

// parseDate accepts YYYY-MM-DD or RFC 3339.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func newClientsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Register target suppliers (and ingest credentials) allowed to use this source",
		Long: `A client is a target supplier allowed to pull practices from this source: its
public keys (an inline JWK Set or an https JWKS URL), the practices it may read,
and its agreed retrievals per practice per rolling 24 hours (S7; default 1). Every
change is recorded in the audit log and revokes the client's current tokens.
See docs/SECURITY.md.`,
	}
	var db string
	cmd.PersistentFlags().StringVar(&db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	cmd.AddCommand(newClientsAddCmd(e, &db), newClientsUpdateCmd(e, &db), newClientsListCmd(e, &db),
		newClientsShowCmd(e, &db), newClientsRemoveCmd(e, &db))
	return cmd
}

func newClientsAddCmd(e *env, db *string) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "add ID --jwks FILE|--jwks-url URL --practice ODS... [--retrievals-per-24h N --agreed-by WHO]",
		Short: "Register a client",
		Example: `  dtm source clients add tss-b --name "Target Supplier B" --jwks tss-jwks.json --practice A81001
  dtm source clients add tss-b --jwks-url https://tss.example/jwks.json --practice A81001 \
      --retrievals-per-24h 4 --agreed-by "J Smith, SSS service desk, ref CHG-1234"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !clientIDPattern.MatchString(id) {
				return usageError{fmt.Errorf("client id %q: use letters, digits and . _ : @ / - (at most 128)", id)}
			}
			c := dtm.Client{ID: id, CreatedAt: time.Now().UTC()}
			if err := f.apply(cmd, &c); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.CreateClient(ctx, c); err != nil {
				return err
			}
			if err := recordAdmin(ctx, st, "client "+id+" added: "+describeClient(c)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "client %s added\n", id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newClientsUpdateCmd(e *env, db *string) *cobra.Command {
	var f clientFlags
	var disable, enable bool
	cmd := &cobra.Command{
		Use:   "update ID [--jwks FILE|--jwks-url URL] [--practice ODS...] [--retrievals-per-24h N --agreed-by WHO] [--disable|--enable]",
		Short: "Change a client's keys, practices, agreement or status (revokes its tokens)",
		Long: `Change the flags given and leave the rest. Key rotation: have the client publish
old and new keys together, register the new JWKS, let it switch, then register a
JWKS without the old key. Every update revokes the client's current access tokens,
so new practices and keys take effect at once.`,
		Example: `  dtm source clients update tss-b --jwks new-jwks.json
  dtm source clients update tss-b --disable`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if disable && enable {
				return usageError{errors.New("give --disable or --enable, not both")}
			}
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := st.Client(ctx, args[0])
			if err != nil {
				return err
			}
			if err := f.apply(cmd, &c); err != nil {
				return err
			}
			if disable || enable {
				c.Disabled = disable
			}
			if err := st.UpdateClient(ctx, c); err != nil {
				return err
			}
			n, err := st.RevokeClientTokens(ctx, c.ID, time.Now())
			if err != nil {
				return err
			}
			if err := recordAdmin(ctx, st, "client "+c.ID+" updated: "+describeClient(c)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "client %s updated; %d access tokens revoked\n", c.ID, n)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&disable, "disable", false, "refuse the client new tokens")
	cmd.Flags().BoolVar(&enable, "enable", false, "allow a disabled client again")
	return cmd
}

// describeClient summarises a registration for the audit log (no keys).
func describeClient(c dtm.Client) string {
	keys := "inline JWKS"
	if c.JWKSURL != "" {
		keys = "JWKS URL " + c.JWKSURL
	}
	s := fmt.Sprintf("practices %s, %s, retrievals %s", strings.Join(c.Practices, ","), keys, agreement(c))
	if c.Ingest {
		s += ", ingest"
	}
	if c.Disabled {
		s += ", disabled"
	}
	return s
}

// agreement describes a client's retrieval agreement.
func agreement(c dtm.Client) string {
	if c.AgreedRetrievalsPer24h <= 0 {
		return fmt.Sprintf("%d per 24 h (default)", dtm.DefaultRetrievalsPer24h)
	}
	return fmt.Sprintf("%d per 24 h, agreed by %s on %s", c.AgreedRetrievalsPer24h, c.AgreedBy, c.AgreedAt.Format(time.DateOnly))
}

func newClientsListCmd(e *env, db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List registered clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			cs, err := st.ListClients(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPRACTICES\tRETRIEVALS\tSTATUS")
			for _, c := range cs {
				status := "enabled"
				if c.Disabled {
					status = "disabled"
				}
				if c.Ingest {
					status += ", ingest"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Practices, ","), agreement(c), status)
			}
			return tw.Flush()
		},
	}
}

func newClientsShowCmd(e *env, db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a client's registration and, per practice, its retrieval history (S7, T2)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := st.Client(ctx, args[0])
			if err != nil {
				return err
			}
			return showClient(ctx, e.stdout, st, c, time.Now())
		},
	}
}

// showClient writes a client's registration and retrieval status.
func showClient(ctx context.Context, w io.Writer, st dtm.AuthStore, c dtm.Client, now time.Time) error {
	keys := "inline JWKS"
	if c.JWKSURL != "" {
		keys = c.JWKSURL
	} else if ks, err := auth.ParseJWKS([]byte(c.JWKS)); err == nil {
		var kids []string
		for _, k := range ks {
			kids = append(kids, k.KeyID+" ("+k.Algorithm+")")
		}
		keys = "inline JWKS: " + strings.Join(kids, ", ")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nname\t%s\nkeys\t%s\nretrievals\t%s\ningest\t%v\ndisabled\t%v\ncreated\t%s\n",
		c.ID, c.Name, keys, agreement(c), c.Ingest, c.Disabled, c.CreatedAt.Format(time.RFC3339))
	fmt.Fprintln(tw, "\nPRACTICE\tLAST RETRIEVAL\tIN LAST 24 H\tWEEKLY (T2)")
	for _, p := range c.Practices {
		rs, err := auth.Retrievals(ctx, st, c.ID, p, now)
		if err != nil {
			return err
		}
		last := "never"
		if !rs.Last.IsZero() {
			last = rs.Last.Format(time.RFC3339)
		}
		weekly := "met"
		if !rs.WeeklyMet {
			weekly = "NOT MET"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\n", p, last, rs.Last24h, rs.Limit, weekly)
	}
	return tw.Flush()
}

func newClientsRemoveCmd(e *env, db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a client; its access tokens stop working at once (its audit history stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.DeleteClient(ctx, args[0]); err != nil {
				return err
			}
			if err := recordAdmin(ctx, st, "client "+args[0]+" removed"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "client %s removed\n", args[0])
			return nil
		},
	}
}

func newAuditCmd(e *env) *cobra.Command {
	var db, format, since, until, observer string
	var q dtm.AuditQuery
	cmd := &cobra.Command{
		Use:   "audit [--client ID] [--practice ODS] [--action A] [--since T] [--until T]",
		Short: "List the audit log, or export it as FHIR AuditEvent NDJSON",
		Long: `List audit events: every token request, refused request, export kick-off,
download and admin change, with who, what, which practice, when and the outcome.
Actions: token, access, kickoff, status, cancel, download, binary, read, ingest,
issue, admin. Outcomes: success, denied, error. --format fhir writes one FHIR R4
AuditEvent per line.`,
		Example: `  dtm source audit --client tss-b --action kickoff --since 2026-03-01
  dtm source audit --format fhir > audit.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if since != "" {
				if q.Since, err = parseDate(since); err != nil {
					return usageError{fmt.Errorf("--since: %w", err)}
				}
			}
			if until != "" {
				if q.Until, err = parseDate(until); err != nil {
					return usageError{fmt.Errorf("--until: %w", err)}
				}
			}
			if format != "table" && format != "fhir" {
				return usageError{fmt.Errorf("--format must be table or fhir")}
			}
			ctx := cmd.Context()
			st, err := openAuthStore(ctx, e, db)
			if err != nil {
				return err
			}
			defer st.Close()
			events, err := st.AuditEvents(ctx, q)
			if err != nil {
				return err
			}
			if format == "fhir" {
				return auth.WriteAuditNDJSON(e.stdout, events, observer)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tWHO\tACTION\tPRACTICE\tOUTCOME\tREMOTE\tDETAIL")
			for _, ev := range events {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339),
					ev.Client, ev.Action, ev.Practice, ev.Outcome, ev.Remote, ev.Detail)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	fl.StringVar(&q.Client, "client", "", "only this client")
	fl.StringVar(&q.Practice, "practice", "", "only this practice")
	fl.StringVar(&q.Action, "action", "", "only this action")
	fl.StringVar(&q.Outcome, "outcome", "", "only this outcome")
	fl.StringVar(&since, "since", "", "events at or after, YYYY-MM-DD or RFC 3339")
	fl.StringVar(&until, "until", "", "events before, YYYY-MM-DD or RFC 3339")
	fl.IntVar(&q.Limit, "limit", 0, "at most this many events (0: all)")
	fl.StringVar(&format, "format", "table", "table or fhir (AuditEvent NDJSON)")
	fl.StringVar(&observer, "observer", "dtm source", "name of this installation in exported AuditEvents")
	return cmd
}

package dtm

import (
	"context"
	"time"
)

// Client is a registered client of the source's authorisation server: a
// target supplier (TSS) that pulls practices, or the source system's own
// ingest credentials. A client authenticates with a JWT signed by a private
// key whose public half is registered here, inline (JWKS) or by URL
// (JWKSURL); exactly one of the two is set.
type Client struct {
	ID      string // client_id: the iss and sub of its assertions
	Name    string // the organisation, for people
	JWKS    string // inline JWK Set JSON; "" when JWKSURL is set
	JWKSURL string // https URL of the client's JWK Set; "" when JWKS is set
	// Practices are the ODS codes of the practices the client may read
	// (or, for an ingest client, write).
	Practices []string
	// Ingest marks the source system's own credentials: the client may
	// request only the ingest scope and may write records and watermarks
	// of its practices.
	Ingest bool
	// AgreedRetrievalsPer24h is how many export kick-offs per practice the
	// client may make in any rolling 24 hours (requirement S7); 0 means the
	// default of DefaultRetrievalsPer24h.
	AgreedRetrievalsPer24h int
	AgreedBy               string    // who agreed the limit (a person or a reference)
	AgreedAt               time.Time // when it was agreed; zero for the default
	CreatedAt              time.Time
	Disabled               bool // a disabled client cannot obtain tokens
}

// DefaultRetrievalsPer24h is the retrieval limit of a client with no recorded
// agreement: one export kick-off per practice per rolling 24 hours (S7).
const DefaultRetrievalsPer24h = 1

// RetrievalLimit returns the client's agreed number of kick-offs per practice
// per rolling 24 hours, or DefaultRetrievalsPer24h when none is recorded.
func (c Client) RetrievalLimit() int {
	if c.AgreedRetrievalsPer24h <= 0 {
		return DefaultRetrievalsPer24h
	}
	return c.AgreedRetrievalsPer24h
}

// Clients is the registry of clients. Implementations are safe for
// concurrent use.
type Clients interface {
	// CreateClient registers a new client and returns it. It returns an
	// EConflict error when the id is taken and EInvalid when the id is
	// empty.
	CreateClient(ctx context.Context, c Client) (Client, error)
	// Client returns one client, or an ENotFound error.
	Client(ctx context.Context, id string) (Client, error)
	// ListClients returns every client ordered by id.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient replaces every field of an existing client except ID
	// and CreatedAt. It returns an ENotFound error for an unknown client.
	UpdateClient(ctx context.Context, c Client) error
	// DeleteClient removes a client and its access tokens (so they stop
	// working at once). Its audit events stay. It returns an ENotFound
	// error for an unknown client.
	DeleteClient(ctx context.Context, id string) error
}

// AccessToken is an issued access token as stored: only the SHA-256 hash of
// the token travels to the store, never the token itself.
type AccessToken struct {
	Hash      string   // lower-case hex SHA-256 of the token string
	Client    string   // client id it was issued to
	Scopes    []string // granted scopes
	Practices []string // the client's practices when it was issued
	Ingest    bool     // granted the ingest scope
	IssuedAt  time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero unless revoked
}

// AccessTokens stores issued access tokens. Implementations are safe for
// concurrent use.
type AccessTokens interface {
	// CreateToken stores a newly issued token. It returns an EConflict
	// error if the hash is already stored.
	CreateToken(ctx context.Context, t AccessToken) error
	// Token returns the token with the given hash, revoked or expired
	// ones included, or an ENotFound error.
	Token(ctx context.Context, hash string) (AccessToken, error)
	// RevokeToken marks one token revoked at time at. It returns an
	// ENotFound error for an unknown hash; revoking twice keeps the first
	// time.
	RevokeToken(ctx context.Context, hash string, at time.Time) error
	// RevokeClientTokens marks every unrevoked token of a client revoked at
	// time at and returns how many it revoked.
	RevokeClientTokens(ctx context.Context, client string, at time.Time) (int, error)
	// DeleteExpiredTokens removes tokens that expired before t and returns
	// how many.
	DeleteExpiredTokens(ctx context.Context, t time.Time) (int, error)
}

// Replays remembers the jti of every accepted client assertion until it
// expires, so that a captured assertion cannot be used twice, even across
// restarts and replicas. Implementations are safe for concurrent use.
type Replays interface {
	// UseJTI records that client used jti in an assertion valid until
	// expiresAt. It returns an EConflict error when the pair is already
	// recorded with an expiry at or after now; an expired record is
	// replaced. Concurrent calls with the same pair succeed at most once.
	UseJTI(ctx context.Context, client, jti string, expiresAt, now time.Time) error
	// DeleteExpiredJTIs forgets pairs that expired before t and returns how
	// many.
	DeleteExpiredJTIs(ctx context.Context, t time.Time) (int, error)
}

// Audit actions: what an AuditEvent records.
const (
	AuditToken    = "token"    // a token request at the token endpoint
	AuditAccess   = "access"   // a request refused by the auth middleware
	AuditKickoff  = "kickoff"  // an export kick-off (counted for S7)
	AuditStatus   = "status"   // an export status poll
	AuditCancel   = "cancel"   // an export cancelled
	AuditDownload = "download" // an export file download
	AuditBinary   = "binary"   // a Binary read
	AuditRead     = "read"     // any other read (digests, status, issues)
	AuditIngest   = "ingest"   // records or watermarks written by ingest
	AuditIssue    = "issue"    // a data issue raised, answered or closed
	AuditAdmin    = "admin"    // a change to clients, practices or cutover state
)

// Audit outcomes.
const (
	OutcomeSuccess = "success" // the action was done
	OutcomeDenied  = "denied"  // refused: bad credentials, no access, over a limit, bad request
	OutcomeError   = "error"   // failed on the server side
)

// AuditEvent is one row of the append-only audit log: who did what to which
// practice, when, and with what outcome. Detail is a short caller-safe
// description; it never contains patient data, tokens or assertions.
type AuditEvent struct {
	Seq      int64     // assigned by the store, increasing
	Time     time.Time // when it happened
	Client   string    // who: a client id, "" when unknown, or "cli:USER" for admin commands
	Action   string    // one of the Audit* constants
	Practice string    // ODS code, "" when none
	Job      string    // export job id, "" when none
	Outcome  string    // OutcomeSuccess, OutcomeDenied or OutcomeError
	Detail   string
	Remote   string // the caller's network address, "" when local
}

// Audit records audit events. Implementations are safe for concurrent use.
type Audit interface {
	// Record appends e to the audit log. It returns an error if the event
	// could not be stored durably; callers should then fail the audited
	// request rather than serve it unaudited.
	Record(ctx context.Context, e AuditEvent) error
}

// AuditQuery selects audit events. Zero fields match everything.
type AuditQuery struct {
	Client   string
	Practice string
	Action   string
	Outcome  string
	Since    time.Time // events at or after
	Until    time.Time // events before
	AfterSeq int64     // events with Seq greater than this, for paging
	Limit    int       // at most this many (0: no limit)
}

// AuditLog is the stored audit log. Implementations are safe for concurrent
// use.
type AuditLog interface {
	Audit
	// AuditEvents returns the matching events in Seq order.
	AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// RecordRetrieval atomically counts e.Client's successful AuditKickoff
	// events for e.Practice with Time after since and, when there are
	// fewer than limit, appends e. It returns the times of the counted
	// events in ascending order and whether e was appended. Concurrent
	// calls (from any replica) never together exceed limit.
	RecordRetrieval(ctx context.Context, e AuditEvent, limit int, since time.Time) (prior []time.Time, recorded bool, err error)
}

// AuthStore is what the authorisation server keeps: clients, tokens,
// assertion ids and the audit log.
type AuthStore interface {
	Clients
	AccessTokens
	Replays
	AuditLog
}

// Package auth is the source's SMART Backend Services authorisation server
// and the target's matching client.
//
// Server side: Server serves /.well-known/smart-configuration and the token
// endpoint (/auth/token), which issues short-lived opaque bearer tokens to
// registered clients (dtm.Client) that authenticate with a JWT assertion
// signed by their private key (OAuth2 client_credentials with
// private_key_jwt, RS384, ES384 or RS512). Server.Middleware checks bearer
// tokens and puts a dtm.Principal in the request context; Server.Record
// appends to the audit log; Server.AllowRetrieval enforces the agreed number
// of export kick-offs per client per practice per rolling 24 hours (S7).
//
// Client side: ClientCredentials signs assertions and obtains, caches and
// refreshes access tokens for the target; GenerateKey, PublicJWKS and the PEM
// helpers make and store its key pair.
//
// TLS: ServerTLSConfig and SelfSignedCert.
//
// Nothing in this package logs a token, an assertion or patient data.
package auth

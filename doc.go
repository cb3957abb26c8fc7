// Package dtm holds the domain of the Data Transfer Mechanism: the types and
// service interfaces shared by the source and target roles. It imports only
// the standard library; adapters (sqlite, postgres, bulk, auth, ...) import it
// and cmd/dtm wires them together.
package dtm

package bulk_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/sqlite"
)

// A source process serves Bulk Data from its store: the handler goes under
// /fhir/ in the process's mux (behind authentication when that is on), and
// Run plans exports until the context ends.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "dtm")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "dtm.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	srv := bulk.NewServer(bulk.Config{
		Journal: db, Practices: db, Jobs: db,
		BaseURL: "http://127.0.0.1:8080",
		Logger:  slog.New(slog.DiscardHandler),
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", srv.Handler())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux} // ListenAndServe in a real process

	cancel() // shutdown: stop the workers before the store closes
	<-done
	// Output:
}

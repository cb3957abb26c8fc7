package main

import (
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// env holds what every subcommand shares: standard streams and the logger.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
}

// logger returns the structured logger configured by --log-level and
// --log-format (text on a terminal, JSON otherwise by default). Logs go to
// stderr and never contain patient data.
func (e *env) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := e.logFormat
	if format == "" {
		format = "json"
		if isTerminal(e.stderr) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "dtm",
		Short: "Data Transfer Mechanism for weekend GP practice migrations",
		Long: `dtm moves an English GP practice from one clinical system supplier to another
with a weekend cutover. The source supplier runs "dtm source" to keep a
versioned copy of the practice's records and serve changes as FHIR R4 Bulk
Data; the target supplier runs "dtm target" to pull, validate, load and
reconcile them, and to drive the cutover.

Configuration: every flag can also be set by an environment variable named
DTM_ followed by the flag name in upper case with dashes as underscores
(for example --db is DTM_DB). Flags win over the environment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return bindEnv(cmd)
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "", "log format: text or json (default text on a terminal, json otherwise)")
	for _, add := range subcommands {
		root.AddCommand(add(e))
	}
	return root
}

// subcommands lists constructors of the top-level commands; each command's
// file appends to it in an init function so that files stay independent.
var subcommands []func(*env) *cobra.Command

// bindEnv sets every flag not given on the command line from its DTM_*
// environment variable, when that is set.
func bindEnv(cmd *cobra.Command) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		name := "DTM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = usageError{err}
			}
		}
	})
	return firstErr
}

// Package pgtest gives tests a real, empty PostgreSQL database.
//
// Start returns the URL of a fresh database, dropped when the test ends. The
// server is, in order of preference:
//
//   - the one at DTM_TEST_POSTGRES_URL (a superuser URL; a database
//     dtm_test_<random> is created on it per call), or
//   - a throwaway cluster this process starts with initdb and postgres
//     (found on PATH or in /usr/lib/postgresql/*/bin) in a temporary
//     directory, on a free loopback port, shared by every test of the
//     process and stopped by Main. As root, the cluster runs as the
//     "postgres" user, since PostgreSQL refuses to run as root.
//
// When neither is available the test is skipped, unless DTM_REQUIRE_POSTGRES
// is set (as .ci/run does): then it fails, so that CI never silently skips the
// PostgreSQL suite.
//
// A package that uses Start should stop the cluster at exit:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without it the cluster is still killed when the test process exits (on
// Linux, through the parent-death signal), but its directory is left behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by Start.
const (
	EnvURL     = "DTM_TEST_POSTGRES_URL"
	EnvRequire = "DTM_REQUIRE_POSTGRES"
)

// skipMessage is the reason tests are skipped without PostgreSQL.
const skipMessage = "postgres: not installed (apt-get install postgresql) — skipping PostgreSQL conformance"

var (
	once    sync.Once
	cluster *server // nil until started
	baseURL string  // superuser URL of the server's "postgres" database
	initErr error
)

// Start returns the URL of a new, empty database on a PostgreSQL server,
// dropped when tb ends. It skips tb when no server can be had (fails it
// when DTM_REQUIRE_POSTGRES is set). It is safe for concurrent use.
func Start(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			baseURL = u
			return
		}
		cluster, initErr = startCluster()
		if cluster != nil {
			baseURL = cluster.url("postgres")
		}
	})
	if baseURL == "" {
		msg := skipMessage
		if initErr != nil && !errors.Is(initErr, errNotInstalled) {
			msg = fmt.Sprintf("postgres: cannot start a cluster: %v", initErr)
		}
		if os.Getenv(EnvRequire) != "" {
			tb.Fatalf("%s (%s is set)", msg, EnvRequire)
		}
		tb.Skip(msg)
	}
	name := "dtm_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("pgtest: drop database: %v", err)
		}
	})
	u, err := url.Parse(baseURL)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests of a package that uses Start and then stops the
// cluster Start may have started. It does not return.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		if err := cluster.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
		}
	}
	os.Exit(code)
}

// adminExec runs one statement on the server's maintenance database.
func adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var errNotInstalled = errors.New("initdb not found")

// server is a throwaway PostgreSQL cluster.
type server struct {
	dir  string // owns data/ and the socket
	port int
	cmd  *exec.Cmd
	done chan error // the postgres process's exit
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// binDir returns the directory holding initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first.
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errNotInstalled
}

// startCluster initialises and starts a cluster, returning once it accepts
// connections.
func startCluster() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user to run the cluster as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "dtm-pgtest-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range 5 { // the free port may be taken before postgres binds it
		s, err := launch(bin, dir, data, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// launch starts postgres on a free port and waits until it is ready.
func launch(bin, dir, data string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, port: port, done: make(chan error, 1)}
	// Durability is not needed for throwaway data: fsync off makes the
	// suite several times faster.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	s.cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case werr := <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres exited: %v\n%s", werr, tail(string(log), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("postgres not ready after 60s: %w", err)
		}
	}
}

// stop shuts the cluster down (fast shutdown) and removes its directory.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	return os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Options configure a Proxy. The zero value forwards everything faithfully.
type Options struct {
	// Seed seeds the random choice of faults (and of where in a body they
	// strike); the same seed and request sequence give the same faults.
	Seed uint64
	// Random configures random faults; none when Rate is 0.
	Random Random
	// MaxBuffer bounds a response body held in memory for a body fault
	// (64 MiB when 0); a larger body passes through unharmed and the
	// injection is recorded as skipped.
	MaxBuffer int64
}

// Proxy forwards HTTP requests to one upstream server, injecting faults.
// It is an http.Handler; Listen serves it on loopback. It is safe for
// concurrent use.
type Proxy struct {
	upstream *url.URL
	rt       http.RoundTripper
	maxBuf   int64

	mu     sync.Mutex
	rng    *rand.Rand
	rules  []*Rule
	random Random
	n      int64
	log    []Injection

	srv *http.Server
	ln  net.Listener
}

// New returns a proxy to upstream (an absolute http URL: scheme and host;
// its path is ignored). It returns an error for an invalid URL.
func New(upstream string, opts Options) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream must be an absolute http URL")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DisableCompression = true // pass gzip through as the server sent it
	p := &Proxy{upstream: u, rt: t, maxBuf: opts.MaxBuffer, rng: rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		random: opts.Random}
	if p.maxBuf <= 0 {
		p.maxBuf = 64 << 20
	}
	return p, nil
}

// Listen serves the proxy on a free loopback port and returns its base
// URL (http://127.0.0.1:port). Close stops it.
func (p *Proxy) Listen() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("faultproxy: listen: %w", err)
	}
	p.ln = ln
	// The server's own log would report every injected abort.
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go p.srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops a proxy started with Listen, closing every connection.
func (p *Proxy) Close() error {
	if p.srv == nil {
		return nil
	}
	return p.srv.Close()
}

// SetRules replaces the rules. Rules are tried in order; the first that
// fires decides the request's fault.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for i := range rules {
		r := rules[i]
		p.rules = append(p.rules, &r)
	}
}

// SetRandom replaces the random fault configuration.
func (p *Proxy) SetRandom(r Random) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.random = r
}

// Requests returns the number of requests the proxy has received.
func (p *Proxy) Requests() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Injections returns a copy of the record of every fault chosen, in order.
func (p *Proxy) Injections() []Injection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Injection(nil), p.log...)
}

// Counts returns the number of faults really injected, by Fault.Label
// (skipped injections are not counted).
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for _, in := range p.log {
		if in.Note == "" {
			m[in.Fault.Label()]++
		}
	}
	return m
}

// choose numbers the request and picks its fault, if any.
func (p *Proxy) choose(r *http.Request) (n int64, f Fault, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	n = p.n
	for _, rl := range p.rules {
		if !rl.match(r) || (rl.Times > 0 && rl.fired >= rl.Times) {
			continue
		}
		rl.matched++
		if rl.Nth > 0 && rl.matched != rl.Nth {
			continue
		}
		rl.fired++
		p.log = append(p.log, Injection{N: n, Method: r.Method, Path: r.URL.Path, Fault: rl.Fault, Rule: true, At: time.Now()})
		return n, rl.Fault, true
	}
	rd := p.random
	if rd.Rate <= 0 || len(rd.Faults) == 0 || (rd.Match != nil && !rd.Match(r)) || p.rng.Float64() >= rd.Rate {
		return n, Fault{}, false
	}
	f = rd.Faults[p.rng.IntN(len(rd.Faults))]
	switch {
	case f.Kind == Reset || f.Kind == Stall:
		if p.rng.IntN(2) == 0 {
			f.At = 0
		} else {
			f.At = 0.05 + 0.9*p.rng.Float64()
		}
	case f.bodyFault():
		f.At = 0.05 + 0.9*p.rng.Float64()
	}
	p.log = append(p.log, Injection{N: n, Method: r.Method, Path: r.URL.Path, Fault: f, At: time.Now()})
	return n, f, true
}

// skip marks request n's injection as not really made, with the reason.
func (p *Proxy) skip(n int64, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.log) - 1; i >= 0; i-- {
		if p.log[i].N == n {
			p.log[i].Note = why
			return
		}
	}
}

// ServeHTTP forwards r to the upstream server, injecting the fault the
// rules or the random generator choose.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, f, faulty := p.choose(r)
	if !faulty {
		p.passThrough(w, r)
		return
	}
	switch {
	case f.Kind == Status:
		if f.Forward {
			if resp, err := p.forward(r); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		writeStatus(w, f)
		return
	case !f.bodyFault():
		// Reset or Stall before the response.
		if f.Forward {
			if resp, err := p.forward(r); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if f.Kind == Stall {
			stall(r, f.Delay)
		}
		reset(w)
		return
	}
	resp, err := p.forward(r)
	if err != nil {
		p.skip(n, "upstream failed: "+err.Error())
		http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBuf+1))
	if err != nil {
		p.skip(n, "upstream body failed: "+err.Error())
		reset(w)
		return
	}
	if int64(len(body)) > p.maxBuf || len(body) < 2 {
		p.skip(n, fmt.Sprintf("body of %d bytes: passed through", len(body)))
		copyHeader(w.Header(), resp.Header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		return
	}
	p.faultBody(w, r, resp, body, f)
}

// faultBody writes resp with body, injecting body fault f.
func (p *Proxy) faultBody(w http.ResponseWriter, r *http.Request, resp *http.Response, body []byte, f Fault) {
	copyHeader(w.Header(), resp.Header)
	cut := min(max(int(float64(len(body))*f.At), 1), len(body)-1)
	switch f.Kind {
	case Truncate, Reset, Stall:
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		w.Write(body[:cut])
		http.NewResponseController(w).Flush()
		if f.Kind == Stall {
			stall(r, f.Delay)
		}
		if f.Kind == Reset {
			reset(w)
			return
		}
		panic(http.ErrAbortHandler) // no terminating chunk: the client sees a broken transfer
	case ShortLength:
		w.Header().Set("Content-Length", strconv.Itoa(cut))
		w.WriteHeader(resp.StatusCode)
		w.Write(body[:cut])
	case LongLength:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+1+len(body)/10))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		// Returning short makes the server close the connection.
	case Slow:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		slowWrite(w, r, body, f.BytesPerSec)
	}
}

// slowWrite writes body at about bps bytes a second, in tenths of a second.
func slowWrite(w http.ResponseWriter, r *http.Request, body []byte, bps int) {
	if bps <= 0 {
		bps = 16 << 10
	}
	step := max(bps/10, 1)
	rc := http.NewResponseController(w)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for len(body) > 0 {
		k := min(step, len(body))
		if _, err := w.Write(body[:k]); err != nil {
			return
		}
		rc.Flush()
		body = body[k:]
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
}

// forward sends r to the upstream server.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	u := *r.URL
	u.Scheme, u.Host = p.upstream.Scheme, p.upstream.Host
	out.URL = &u
	out.Host = p.upstream.Host
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	return p.rt.RoundTrip(out)
}

// passThrough forwards r and streams the response back unchanged.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request) {
	resp, err := p.forward(r)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(flushWriter{w}, resp.Body); err != nil {
		// The upstream broke off: so does the proxy, rather than end the
		// response cleanly.
		panic(http.ErrAbortHandler)
	}
}

// flushWriter flushes after every write, so streamed responses stream.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	http.NewResponseController(f.w).Flush()
	return n, err
}

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// copyHeader copies the end-to-end headers of src into dst.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}

// writeStatus answers a Status fault with an OperationOutcome.
func writeStatus(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	body := fmt.Appendf(nil, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"faultproxy: injected %d"}]}`, f.Code)
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.Code)
	io.Copy(w, bytes.NewReader(body))
}

// stall waits d (a minute when 0) or until the client goes away.
func stall(r *http.Request, d time.Duration) {
	if d <= 0 {
		d = time.Minute
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// reset closes the client's connection with a TCP RST (SO_LINGER 0),
// flushing whatever the response has written so far.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

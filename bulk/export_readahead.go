package bulk

import (
	"bufio"
	"context"
	"runtime"

	"github.com/dtm-project/dtm"
)

// Read-ahead of large export files. Reading the journal (SQLite or
// PostgreSQL rows, the resource bodies) is most of the cost of serving a
// file, and one download is one goroutine: on its own it keeps one core
// busy. So a change part of more than segmentRows resources is cut into
// segments of its seq range; the handler writes them in order while
// goroutines read the next ones ahead. Read-ahead goroutines hold tokens of
// Server.readAhead, so that however many downloads run, at most
// readAheadTokens segments are read ahead at once, each buffering at most
// aheadBuffers*segmentBuffer bytes: memory stays bounded, and busy servers,
// whose cores are already used by concurrent downloads, read ahead little.
const (
	// segmentRows is how many resources a segment holds on average (its
	// seq width is the part's, divided in proportion). Each segment scan
	// reads up to one store page past its end, so segments are large.
	segmentRows = 12_000
	// segmentBuffer is the size a segment's rendered lines are handed to
	// the writer in.
	segmentBuffer = 128 << 10
	// aheadBuffers is how many buffers a segment read ahead may fill
	// before it waits for the writer (12 MiB); the segment being written
	// gets currentBuffers.
	aheadBuffers   = 96
	currentBuffers = 2
	// maxReadAhead bounds readAheadTokens.
	maxReadAhead = 4
)

// readAheadTokens is the capacity of Server.readAhead: the cores beyond
// the one a download's writer uses, at most maxReadAhead. With one core
// there is none, and files are read in one scan.
func readAheadTokens() int {
	return min(max(runtime.GOMAXPROCS(0)-1, 0), maxReadAhead)
}

// segment is one sub-range of a change part being read by its own
// goroutine. n and err are valid once bufs is closed.
type segment struct {
	bufs  chan []byte // rendered NDJSON lines, in order
	n     int64       // lines rendered
	err   error
	token bool // holds a Server.readAhead token
}

// writeSegments writes change part f, cut into the given contiguous seq
// ranges, to w: segment i is read while the writer is at segment i, or
// earlier when a read-ahead token is free. It returns the number of lines
// written; on any error it stops every segment before returning.
func (s *Server) writeSegments(ctx context.Context, job *dtm.ExportJob, f dtm.ExportFile, ranges [][2]int64, w *bufio.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	segs := make([]*segment, 0, len(ranges))
	defer func() {
		cancel()
		for _, sg := range segs {
			for range sg.bufs { // until the goroutine has stopped
			}
		}
	}()
	free := make(chan []byte, currentBuffers+2) // buffers written, for reuse
	start := func(ahead bool) {
		i := len(segs)
		sg := &segment{bufs: make(chan []byte, currentBuffers), token: ahead}
		if ahead {
			sg.bufs = make(chan []byte, aheadBuffers)
		}
		segs = append(segs, sg)
		go s.readSegment(ctx, job, f, ranges[i][0], ranges[i][1], sg, free)
	}
	var n int64
	for i := range ranges {
		if len(segs) == i {
			start(false)
		}
		for len(segs) < len(ranges) && len(segs) <= i+cap(s.readAhead) && s.takeReadAhead() {
			start(true)
		}
		for b := range segs[i].bufs {
			if _, err := w.Write(b); err != nil {
				return n, err
			}
			select {
			case free <- b:
			default:
			}
		}
		if err := segs[i].err; err != nil {
			return n, err
		}
		n += segs[i].n
	}
	return n, nil
}

// takeReadAhead takes a read-ahead token if one is free.
func (s *Server) takeReadAhead() bool {
	select {
	case s.readAhead <- struct{}{}:
		return true
	default:
		return false
	}
}

// readSegment renders the lines of f with seq in (from, to] into buffers
// sent on sg.bufs, taking them from free when it can; when done it
// releases sg's token and then closes sg.bufs. A cancelled ctx stops it.
func (s *Server) readSegment(ctx context.Context, job *dtm.ExportJob, f dtm.ExportFile, from, to int64, sg *segment, free chan []byte) {
	defer close(sg.bufs)
	if sg.token {
		defer func() { <-s.readAhead }()
	}
	newBuf := func() []byte {
		select {
		case b := <-free:
			return b[:0]
		default:
			return make([]byte, 0, segmentBuffer+segmentBuffer/4)
		}
	}
	send := func(b []byte) error {
		select {
		case sg.bufs <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	buf := newBuf()
	n, err := s.renderRange(ctx, job, f, from, to, func(line []byte) error {
		buf = append(append(buf, line...), '\n')
		if len(buf) < segmentBuffer {
			return nil
		}
		err := send(buf)
		buf = newBuf()
		return err
	})
	if err == nil && len(buf) > 0 {
		err = send(buf)
	}
	sg.n, sg.err = n, err
}

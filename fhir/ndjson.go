package fhir

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// DefaultMaxLineBytes is the longest NDJSON line accepted by default.
const DefaultMaxLineBytes = 64 << 20

// NDJSONOptions configures an NDJSONReader.
type NDJSONOptions struct {
	// MaxLineBytes is the longest line accepted, not counting its line
	// ending. 0 means DefaultMaxLineBytes.
	MaxLineBytes int
}

// NDJSONReader reads newline-delimited JSON resources, one per line, as
// produced by FHIR Bulk Data. It holds at most one line in memory (plus a
// 64 KiB read buffer), whatever the size of the stream. It is not safe for
// concurrent use.
type NDJSONReader struct {
	br   *bufio.Reader
	max  int
	buf  []byte
	line int   // number of the last line read
	err  error // sticky read error (io.EOF at the end)
}

// NewNDJSONReader returns a reader of the NDJSON stream r. The caller
// closes r, after it is done with the reader.
func NewNDJSONReader(r io.Reader, opts NDJSONOptions) *NDJSONReader {
	max := opts.MaxLineBytes
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &NDJSONReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// bigBuffer is the line buffer size above which the buffer is released
// before the next line, so one huge line does not pin its memory.
const bigBuffer = 4 << 20

// Next returns the next non-blank line and its 1-based line number. Lines
// may end in "\n" or "\r\n", the last one may have no ending, blank lines
// are skipped and a UTF-8 byte order mark at the start of the stream is
// ignored. The returned slice is valid only until the next call.
//
// A line that is longer than MaxLineBytes (which is discarded without
// being held in memory), is not valid UTF-8, or is not exactly one valid
// JSON object yields a *LineError (matching ErrTooLarge or ErrInvalid);
// the caller may call Next again to go on with the following line. At the
// end of the stream Next returns io.EOF. Other read errors are returned
// wrapped, and again on every later call.
func (r *NDJSONReader) Next() (line []byte, lineNo int, err error) {
	for {
		if r.err != nil {
			return nil, r.line, r.err
		}
		line, tooLong, err := r.readLine()
		if err != nil && err != io.EOF {
			r.err = fmt.Errorf("read ndjson line %d: %w", r.line+1, err)
			return nil, r.line, r.err
		}
		if err == io.EOF {
			r.err = io.EOF
			if len(line) == 0 && !tooLong {
				return nil, r.line, io.EOF
			}
		}
		r.line++
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if tooLong {
			return nil, r.line, &LineError{Line: r.line, Err: &inputError{kind: ErrTooLarge, msg: "line exceeds " + formatSize(r.max)}}
		}
		if isBlank(line) {
			continue
		}
		if err := checkLine(line); err != nil {
			return nil, r.line, &LineError{Line: r.line, Err: err}
		}
		return line, r.line, nil
	}
}

// readLine reads one line without its ending. When the line is longer than
// r.max it reads on to the end of the line without keeping it, and reports
// tooLong. err is io.EOF when the stream ended (line then holds the last,
// unterminated line, if any).
func (r *NDJSONReader) readLine() (line []byte, tooLong bool, err error) {
	if cap(r.buf) > bigBuffer {
		r.buf = nil
	}
	r.buf = r.buf[:0]
	limit := r.max + 2 // room for "\r\n"
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(chunk) > limit {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = appendBounded(r.buf, chunk, limit)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		line = r.buf
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > r.max {
			tooLong = true
		}
		if tooLong {
			line = nil
		}
		return line, tooLong, err
	}
}

// appendBounded appends src to dst, growing dst by doubling but never
// beyond limit bytes of capacity, so a line of just under the limit does
// not cost twice the limit.
func appendBounded(dst, src []byte, limit int) []byte {
	if need := len(dst) + len(src); need > cap(dst) {
		c := max(2*cap(dst), need, 4096)
		c = min(c, max(limit, need))
		grown := make([]byte, len(dst), c)
		copy(grown, dst)
		dst = grown
	}
	return append(dst, src...)
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// checkLine validates one non-blank NDJSON line as exactly one JSON object.
func checkLine(line []byte) error {
	first := bytes.TrimLeft(line, " \t\r")
	if first[0] != '{' {
		return invalidf("not a JSON object")
	}
	return walkObject(line, nil)
}

// Compact appends to dst the JSON value src with insignificant whitespace
// removed, keeping every number literal and every string's bytes (escapes
// included) exactly as written. It returns dst unchanged and an error
// matching ErrInvalid when src is not exactly one valid JSON value (valid
// UTF-8, nesting within limits).
func Compact(dst, src []byte) ([]byte, error) {
	w := walker{data: src}
	if err := w.value(0); err != nil {
		return dst, err
	}
	w.skipSpace()
	if w.pos != len(src) {
		return dst, w.errorf("unexpected data after the value")
	}
	return appendCompact(dst, src), nil
}

// appendCompact strips whitespace outside strings from valid JSON.
func appendCompact(dst, src []byte) []byte {
	start := 0 // start of the run not yet copied
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			for i++; i < len(src); i++ {
				i += stringRun(src[i:])
				if i >= len(src) || src[i] == '"' {
					break
				}
				i++ // a backslash: skip the escaped byte
			}
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

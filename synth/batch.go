package synth

// item locates one resource inside a batch buffer.
type item struct {
	typ        string
	start, end int
}

// batch collects the JSON of a group of resources (one patient's record,
// or the practice-level resources) in one buffer.
type batch struct {
	buf   []byte
	items []item
	mark  int
	e     enc
}

// start begins a new resource at the end of the buffer and returns the
// encoder to write it with; finish must be called when it is complete.
func (b *batch) start() *enc {
	b.mark = len(b.buf)
	b.e.b = b.buf
	b.e.need = false
	return &b.e
}

// finish records the resource written since start.
func (b *batch) finish(typ string, e *enc) {
	b.buf = e.b
	b.items = append(b.items, item{typ: typ, start: b.mark, end: len(b.buf)})
}

// reset empties the batch, keeping its memory.
func (b *batch) reset() {
	b.buf = b.buf[:0]
	b.items = b.items[:0]
}

// each calls fn for every resource in order, stopping at the first error.
// The JSON passed to fn is only valid during the call.
func (b *batch) each(fn func(typ string, json []byte) error) error {
	for _, it := range b.items {
		if err := fn(it.typ, b.buf[it.start:it.end:it.end]); err != nil {
			return err
		}
	}
	return nil
}

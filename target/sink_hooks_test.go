package target

// FailAfterForTest makes the sink fail after writing n resources of a
// batch, as a crash in mid-delivery would leave it (0: never).
func (s *NDJSONSink) FailAfterForTest(n int) { s.failAfter = n }

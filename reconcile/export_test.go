package reconcile

// SetMaxTouched sets the share of touched buckets above which Advance
// recomputes from scratch, and returns a function restoring it.
func SetMaxTouched(f float64) (restore func()) {
	old := maxTouched
	maxTouched = f
	return func() { maxTouched = old }
}

package cutover

// SetHook makes r call h before and after each step's work; an error from
// h stops the run there, as a crash would. For tests only.
func SetHook(r *Runner, h func(step, point string) error) { r.hook = h }

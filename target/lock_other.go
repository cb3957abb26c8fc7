//go:build !unix

package target

// lockPractice does nothing where flock is unavailable: run one pull per
// practice at a time.
func (p *Puller) lockPractice(practice string) (unlock func(), err error) {
	return func() {}, nil
}

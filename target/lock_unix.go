//go:build unix

package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dtm-project/dtm"
)

// lockPractice takes an exclusive advisory lock on the practice in the
// work directory, so that two processes (a scheduled run and a manual
// pull) never work on the same pull at once. It returns an EConflict error
// when another process holds it, and the function that releases it.
func (p *Puller) lockPractice(practice string) (unlock func(), err error) {
	if err := os.MkdirAll(p.cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(p.cfg.WorkDir, practice+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, dtm.Errorf(dtm.EConflict, "another pull of practice %s is running (work dir %s)", practice, p.cfg.WorkDir)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return func() { f.Close() }, nil
}

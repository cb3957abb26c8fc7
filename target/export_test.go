package target

// LockForTest takes the practice lock a pull takes.
func LockForTest(p *Puller, practice string) (func(), error) { return p.lockPractice(practice) }

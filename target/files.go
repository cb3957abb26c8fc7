package target

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dtm-project/dtm"
)

// download fetches, in parallel, every file of the pull not yet verified,
// recording each as soon as it is, so that a restarted pull does not fetch
// it again. A file whose verified copy has vanished from the work
// directory is fetched again.
func (p *Puller) download(ctx context.Context, rec *dtm.PullRecord, m *Manifest) error {
	if err := p.saveFiles(ctx, rec.ID, m); err != nil {
		return err
	}
	files, err := p.cfg.State.Files(ctx, rec.ID)
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	if err := os.MkdirAll(p.workDir(rec.ID), 0o700); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	var todo []int
	totals := map[string]int64{}
	for i, f := range files {
		if f.Applied {
			continue
		}
		if f.Verified {
			if _, err := os.Stat(f.Path); err == nil {
				continue
			}
		}
		todo = append(todo, i)
		totals[progressType(f)]++
	}
	p.startTypes("download", int64(len(todo)), totals)
	defer p.cfg.Progress.Done("download")
	var mu sync.Mutex // serialises SaveFile calls
	err = forEach(ctx, len(todo), p.cfg.Parallel, func(ctx context.Context, j int) error {
		i := todo[j]
		f, err := p.fetch(ctx, rec.ID, i, files[i], m)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if err := p.cfg.State.SaveFile(ctx, f); err != nil {
			return fmt.Errorf("save file record: %w", err)
		}
		p.cfg.Progress.Add("download", progressType(f), 1)
		return nil
	})
	if err != nil {
		return err
	}
	rec.Status = dtm.PullApplying
	return p.save(ctx, rec)
}

// fetch downloads file number i of a pull and returns its verified record.
func (p *Puller) fetch(ctx context.Context, pull string, i int, f dtm.PullFile, m *Manifest) (dtm.PullFile, error) {
	tok, err := p.cfg.Client.FileToken(m, f.URL)
	if err != nil {
		return f, err
	}
	name := fmt.Sprintf("%04d-%s-%s.ndjson", i+1, f.Kind, safeName(f.Type))
	r, err := p.cfg.Client.DownloadFile(ctx, f.URL, tok, filepath.Join(p.workDir(pull), name), f.Count)
	if err != nil {
		return f, expired(err)
	}
	f.Path, f.SHA256, f.Bytes, f.Lines, f.Verified = r.Path, r.SHA256, r.Bytes, r.Lines, true
	p.log.Debug("file verified", "pull", pull, "kind", f.Kind, "type", f.Type, "lines", f.Lines, "bytes", f.Bytes)
	return f, nil
}

// safeName keeps letters and digits of a manifest type for a file name.
func safeName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "x" + strconv.Itoa(len(s))
	}
	return string(b)
}

package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
)

// targetTree returns the practice's digest tree at head: advanced from the
// tree kept in file when there is a usable one, computed otherwise; and
// keeps the result in file (when file is not ""). how says which.
func targetTree(ctx context.Context, store dtm.Journal, practice string, head dtm.Snapshot, file string) (t reconcile.Tree, how string, err error) {
	if file != "" {
		if old, ok, err := readTree(ctx, store, practice, file); err != nil {
			return t, "", err
		} else if ok {
			t, err = reconcile.Advance(ctx, store, old, head)
			how = fmt.Sprintf("advanced from seq %d", old.Digest.Snapshot.Seq)
			if err != nil {
				return t, how, err
			}
		}
	}
	if how == "" {
		how = "computed"
		if t, err = reconcile.ComputeTree(ctx, store, practice, head); err != nil {
			return t, how, err
		}
	}
	if file != "" {
		if err := writeTree(file, t); err != nil {
			return t, how, err
		}
	}
	return t, how, nil
}

// readTree reads the tree kept in file; ok is false when there is none or
// it is not a tree of this practice and store (it is then ignored).
func readTree(ctx context.Context, store dtm.Journal, practice, file string) (reconcile.Tree, bool, error) {
	var t reconcile.Tree
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return t, false, nil
	} else if err != nil {
		return t, false, fmt.Errorf("read digest tree: %w", err)
	}
	if json.Unmarshal(b, &t) != nil {
		return t, false, nil
	}
	ok, err := t.Check(ctx, store, practice)
	return t, ok, err
}

// writeTree writes t to file atomically (a temporary file renamed).
func writeTree(file string, t reconcile.Tree) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("write digest tree: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("write digest tree: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write digest tree: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write digest tree: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write digest tree: %w", err)
	}
	return nil
}

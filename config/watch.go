package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange once after each burst of changes to the files that files returns
// (the config file and its secret files), until ctx is done; then it returns nil.
//
// It watches the files' directories rather than the files, so a file replaced by a rename
// (editors, atomic writes) is still seen, follows symlinked files to their targets, and treats any event in a directory holding a
// "..data" entry as a change: Kubernetes updates mounted secrets and config maps by swapping
// that symlink, and no event then names the file itself. Events within debounce of each
// other make one call. After each call files is asked again, since a reload may reference
// different secret files.
//
// It returns an error only if the watch cannot be set up.
func Watch(ctx context.Context, files func() []string, debounce time.Duration, onChange func()) error {
	w, err := newWatcher(files)
	if err != nil {
		return err
	}
	defer w.close()
	w.run(ctx, debounce, onChange)
	return nil
}

type watcher struct {
	fs      *fsnotify.Watcher
	files   func() []string
	targets map[string]bool // cleaned absolute file paths
	dirs    map[string]bool // watched directories
}

func newWatcher(files func() []string) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config files: %w", err)
	}
	w := &watcher{fs: fw, files: files, dirs: map[string]bool{}}
	if err := w.refresh(); err != nil {
		_ = fw.Close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) close() { _ = w.fs.Close() }

// refresh re-reads the file set and watches each directory again; re-adding also restores a
// watch lost because its directory was removed and recreated.
func (w *watcher) refresh() error {
	targets, dirs := map[string]bool{}, map[string]bool{}
	for _, f := range w.files() {
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("watch %s: %w", f, err)
		}
		targets[abs] = true
		dirs[filepath.Dir(abs)] = true
		// A symlinked file changes where its target lives; watch there too. A missing
		// file has no target yet: its directory watch will see it appear.
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			targets[real] = true
			dirs[filepath.Dir(real)] = true
		}
	}
	var errs []error
	for d := range dirs {
		if err := w.fs.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("watch directory %s: %w", d, err))
		}
	}
	for d := range w.dirs {
		if !dirs[d] {
			_ = w.fs.Remove(d) // may already be gone with its directory
		}
	}
	w.targets, w.dirs = targets, dirs
	return errors.Join(errs...)
}

// relevant reports whether ev may have changed one of the files.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false // atime, indexers and backup tools; content is unchanged
	}
	name, err := filepath.Abs(ev.Name)
	if err != nil {
		return false
	}
	if w.targets[name] {
		return true
	}
	dir := filepath.Dir(name)
	if !w.dirs[dir] {
		return false
	}
	_, err = os.Lstat(filepath.Join(dir, "..data"))
	return err == nil
}

func (w *watcher) run(ctx context.Context, debounce time.Duration, onChange func()) {
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				timer.Reset(debounce)
			}
		case _, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// Typically a queue overflow: events were lost, so assume a change.
			timer.Reset(debounce)
		case <-timer.C:
			onChange()
			// A directory that cannot be watched now is retried after the next change; the
			// reload that onChange triggered has already reported the missing file.
			_ = w.refresh()
		}
	}
}

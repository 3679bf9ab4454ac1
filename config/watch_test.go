package config

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const testDebounce = 100 * time.Millisecond

// fileSet is a files func whose answer a test can change, as a reload would.
type fileSet struct {
	mu    sync.Mutex
	files []string
}

func (s *fileSet) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.files...)
}

func (s *fileSet) set(files ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = files
}

// startWatch runs a watch on files and returns a channel that receives one value per
// onChange call. The directories are watched before it returns.
func startWatch(t *testing.T, files func() []string) <-chan struct{} {
	t.Helper()
	w, err := newWatcher(files)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.close()
		w.run(ctx, testDebounce, func() { calls <- struct{}{} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return calls
}

// expectCalls waits for want calls (each within a second), then checks that no more arrive
// during a quiet period several debounce intervals long.
func expectCalls(t *testing.T, calls <-chan struct{}, want int) {
	t.Helper()
	for i := range want {
		select {
		case <-calls:
		case <-time.After(time.Second + testDebounce):
			t.Fatalf("got %d onChange calls, want %d", i, want)
		}
	}
	select {
	case <-calls:
		t.Fatalf("got more than %d onChange calls", want)
	case <-time.After(4 * testDebounce):
	}
}

// k8sSecretDir lays out a directory the way a Kubernetes secret volume does:
// name -> ..data/name, ..data -> ..<version>/, and returns the path of name.
func k8sSecretDir(t *testing.T, dir, name, content string) string {
	t.Helper()
	writeFile(t, dir, "..2026_01/"+name, content)
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.Symlink(filepath.Join("..data", name), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// k8sSwap updates a k8sSecretDir the way the kubelet does: a new version directory, a
// temporary symlink renamed over ..data, then the old version removed.
func k8sSwap(t *testing.T, dir, name, content string) {
	t.Helper()
	writeFile(t, dir, "..2026_02/"+name, content)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..2026_02", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
}

func TestWatchChanges(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string) string // returns the watched file
		change func(t *testing.T, file string)
		want   int
	}{
		{
			name:  "write",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				if err := os.WriteFile(file, []byte("b"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: 1,
		},
		{
			name:  "rename over",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				tmp := writeFile(t, filepath.Dir(file), ".bff.yaml.tmp", "b")
				if err := os.Rename(tmp, file); err != nil {
					t.Fatal(err)
				}
			},
			want: 1,
		},
		{
			name:  "kubernetes symlink swap",
			setup: func(t *testing.T, dir string) string { return k8sSecretDir(t, dir, "cache-key", "a") },
			change: func(t *testing.T, file string) {
				k8sSwap(t, filepath.Dir(file), "cache-key", "b")
				if b, err := os.ReadFile(file); err != nil || string(b) != "b" {
					t.Fatalf("after the swap the file reads %q, %v", b, err)
				}
			},
			want: 1,
		},
		{
			name: "symlink to a file in another directory",
			setup: func(t *testing.T, dir string) string {
				target := writeFile(t, t.TempDir(), "bff.yaml", "a")
				link := filepath.Join(dir, "bff.yaml")
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				return link
			},
			change: func(t *testing.T, file string) {
				target, err := filepath.EvalSymlinks(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(target, []byte("b"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: 1,
		},
		{
			name:  "burst of ten writes",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				for i := range 10 {
					if err := os.WriteFile(file, []byte{byte('0' + i)}, 0o600); err != nil {
						t.Fatal(err)
					}
					time.Sleep(testDebounce / 10)
				}
			},
			want: 1,
		},
		{
			name:  "remove",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				if err := os.Remove(file); err != nil {
					t.Fatal(err)
				}
			},
			want: 1,
		},
		{
			name:  "another file in the directory",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				writeFile(t, filepath.Dir(file), "notes.txt", "unrelated")
			},
			want: 0,
		},
		{
			name:  "chmod only",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "bff.yaml", "a") },
			change: func(t *testing.T, file string) {
				if err := os.Chmod(file, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.setup(t, t.TempDir())
			calls := startWatch(t, func() []string { return []string{file} })
			tc.change(t, file)
			expectCalls(t, calls, tc.want)
		})
	}
}

func TestWatchFollowsTheFileSet(t *testing.T) {
	first := writeFile(t, t.TempDir(), "bff.yaml", "a")
	second := writeFile(t, t.TempDir(), "acme-key", "k1")
	files := &fileSet{}
	files.set(first)
	calls := startWatch(t, files.get)

	t.Run("a file not yet referenced is ignored", func(t *testing.T) {
		writeFile(t, filepath.Dir(second), "acme-key", "k2")
		expectCalls(t, calls, 0)
	})
	t.Run("after a reload adds it, it is watched", func(t *testing.T) {
		files.set(first, second)
		writeFile(t, filepath.Dir(first), "bff.yaml", "b") // the reload is triggered by this edit
		expectCalls(t, calls, 1)
		writeFile(t, filepath.Dir(second), "acme-key", "k3")
		expectCalls(t, calls, 1)
	})
	t.Run("after a reload drops it, it is ignored again", func(t *testing.T) {
		files.set(first)
		writeFile(t, filepath.Dir(second), "acme-key", "k4") // the reload is triggered by this edit
		expectCalls(t, calls, 1)
		writeFile(t, filepath.Dir(second), "acme-key", "k5")
		expectCalls(t, calls, 0)
	})
}

func TestWatchStopsWithContext(t *testing.T) {
	file := writeFile(t, t.TempDir(), "bff.yaml", "a")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, func() []string { return []string{file} }, testDebounce, func() {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope", "bff.yaml")
	err := Watch(t.Context(), func() []string { return []string{missing} }, testDebounce, func() {})
	if err == nil {
		t.Fatal("Watch of a file in a missing directory returned nil")
	}
}

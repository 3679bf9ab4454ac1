package archtest

import (
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fzipp/gocyclo"
)

const module = "github.com/basiq-bff/bff/"

// root is the module's directory, three levels up from this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// pkg is one package of the module: its path inside the module and what its non-test files
// import.
type pkg struct {
	path    string
	imports []string
}

// packages lists the module's packages (web's node_modules and testdata left out).
func packages(t *testing.T) []pkg {
	t.Helper()
	base := root(t)
	var out []pkg
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != base && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, path)
		if err != nil {
			return err
		}
		out = append(out, pkg{path: filepath.ToSlash(rel), imports: p.Imports})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d packages under %s", len(out), base)
	}
	return out
}

// TestImportRule checks the dependency rule of docs/architecture.md on production code (tests
// may reach further: the handler benchmark compares with bare echo, the token tests keep users
// in SQLite).
func TestImportRule(t *testing.T) {
	pkgs := packages(t)
	ours := func(p string) string { return strings.TrimPrefix(p, module) }
	prefixed := func(prefixes ...string) func(string) bool {
		return func(imp string) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return imp == p || strings.HasPrefix(imp, p+"/") })
		}
	}
	within := func(allowed ...string) func(string) bool {
		return func(pkg string) bool {
			return slices.ContainsFunc(allowed, func(a string) bool { return pkg == a || strings.HasPrefix(pkg, a+"/") })
		}
	}
	rules := []struct {
		name    string
		imports func(imp string) bool
		mayUse  func(pkg string) bool
	}{
		{"echo and rs/cors", prefixed("github.com/labstack/echo", "github.com/labstack/echo/v4", "github.com/rs/cors"),
			within("server/internal/httpapi")},
		{"gorilla/sessions", prefixed("github.com/gorilla/sessions"), within("server/internal/session")},
		{"go-redis", prefixed("github.com/redis/go-redis/v9", "github.com/redis/go-redis/extra/redisotel/v9"),
			within("server/internal/kv")},
		{"database drivers and migrations", prefixed("github.com/jackc/pgx/v5", "modernc.org/sqlite", "github.com/pressly/goose/v3",
			"github.com/XSAM/otelsql"), within("server/internal/store")},
		{"the SQL adapter", prefixed(module + "server/internal/store"), within("server", "server/internal/store")},
		{"the HTTP adapter", prefixed(module + "server/internal/httpapi"), within("server")},
		{"net/http in the error kinds", prefixed("net/http"), func(pkg string) bool { return pkg != "server/internal/apperr" }},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for _, p := range pkgs {
				for _, imp := range p.imports {
					if r.imports(imp) && !r.mayUse(p.path) {
						t.Errorf("%s imports %s", p.path, ours(imp))
					}
				}
			}
		})
	}
}

// TestLeaves checks that the small shared packages import no package of this module: each
// does one job that anything may use without pulling in more.
func TestLeaves(t *testing.T) {
	leaves := []string{"server/internal/apperr", "server/internal/user", "server/internal/clip", "server/internal/derive",
		"server/internal/pseudonym", "server/internal/ttlcache", "server/internal/secevent", "server/internal/logsink",
		"server/internal/metrics", "server/internal/reqid", "server/internal/buildinfo", "server/internal/testenv", "config"}
	pkgs := packages(t)
	for _, leaf := range leaves {
		t.Run(leaf, func(t *testing.T) {
			i := slices.IndexFunc(pkgs, func(p pkg) bool { return p.path == leaf })
			if i < 0 {
				t.Fatalf("no package %s", leaf)
			}
			for _, imp := range pkgs[i].imports {
				if strings.HasPrefix(imp, module) {
					t.Errorf("%s imports %s", leaf, strings.TrimPrefix(imp, module))
				}
			}
		})
	}
}

// maxComplexity is the most branches one function may have (gocyclo's count).
const maxComplexity = 20

// TestComplexity keeps every function at or under maxComplexity, in the production code and
// in the tests alike: a long test is split into named helpers or table rows.
func TestComplexity(t *testing.T) {
	all := gocyclo.Analyze([]string{root(t)}, regexp.MustCompile(`/node_modules/`))
	tests := 0
	for _, s := range all {
		if strings.HasSuffix(s.Pos.Filename, "_test.go") {
			tests++
		}
	}
	if len(all)-tests < 500 || tests < 500 {
		t.Fatalf("analysed only %d functions of production code and %d of tests", len(all)-tests, tests)
	}
	for _, s := range all.SortAndFilter(-1, maxComplexity) {
		t.Errorf("%s: %s has cyclomatic complexity %d (at most %d)", s.Pos, s.FuncName, s.Complexity, maxComplexity)
	}
}

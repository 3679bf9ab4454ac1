// Package archtest holds no code: its tests check the rules of docs/architecture.md on the
// whole module, on every go test. Which package may import echo, rs/cors, gorilla/sessions,
// go-redis, the database drivers and the SQL adapter; which packages are leaves; and that no
// function, of the tests as of the production code, grows past cyclomatic complexity 20
// (gocyclo).
package archtest

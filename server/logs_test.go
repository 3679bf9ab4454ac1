package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// logLine is one JSON log line, decoded loosely.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

func parseLogLines(t *testing.T, logs string) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "{") {
			continue // go-redis writes its own notices
		}
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a log line is not JSON: %v: %.200s", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// TestRequestLogLines runs a replica with the log buffer as shipped and checks the request
// log: one line per request, the token routes' audit fields on it, mints as lines of their
// own, and everything written out by the time the server has stopped.
func TestRequestLogLines(t *testing.T) {
	s := newStack(t, stackOptions{bufferedLogs: true})
	s.addUser("beta", "carol@beta.test", testPassword)
	r := s.start()
	c := newClient(t, r.url)
	c.mustLogin("beta", "carol@beta.test", testPassword)
	const tokens = 5
	for range tokens {
		c.mustToken()
	}
	if _, resp := c.token(); resp.status != 200 {
		t.Fatalf("token: %d", resp.status)
	}
	noCSRF := c.do("GET", "/client-token", "", nil)
	if noCSRF.status != 403 {
		t.Fatalf("without X-CSRF: %d, want 403", noCSRF.status)
	}
	requests := 1 + tokens + 1 + 1 // login, tokens, one more token, the refused one

	// The buffer is written within the flush interval, without waiting for shutdown.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(r.logs.String(), `"msg":"request"`) < requests && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := strings.Count(r.logs.String(), `"msg":"request"`); got != requests {
		t.Fatalf("before shutdown: %d request lines, want %d", got, requests)
	}

	// Shutdown writes what is left: the "shutting down" line comes after the last flush tick.
	r.stop()
	err := <-r.done
	r.done <- err // for the cleanup
	if err != nil {
		t.Fatalf("server stopped with error: %v", err)
	}
	reqLines, served, minted, sawShutdown := sortLogLines(t, parseLogLines(t, r.logs.String()))
	if !sawShutdown {
		t.Error("the last line logged before exit is missing: the buffer was not flushed at shutdown")
	}
	if len(reqLines) != requests {
		t.Errorf("%d request lines, want %d (one per request)", len(reqLines), requests)
	}
	ids := map[string]bool{}
	for _, l := range reqLines {
		id := l.str("request_id")
		if id == "" || ids[id] {
			t.Errorf("request line without a unique request_id: %v", l)
		}
		ids[id] = true
	}
	if len(served) != tokens+1 {
		t.Fatalf("%d token request lines, want %d", len(served), tokens+1)
	}
	checkTokenRequestLines(t, served, minted, tokens)
	for _, l := range reqLines {
		if l.str("route") == "/client-token" && l["status"] == float64(403) && l["audit"] != nil {
			t.Errorf("a refused request's line carries audit fields: %v", l)
		}
	}
}

// sortLogLines picks out of a replica's log its request lines, those of the tokens served, the
// Basiq mint lines, and whether the line logged last before exit is there. A separate "client
// token served" line is an error: the request line is the audit event.
func sortLogLines(t *testing.T, lines []logLine) (reqLines, served, minted []logLine, sawShutdown bool) {
	t.Helper()
	for _, l := range lines {
		switch l.str("msg") {
		case "request":
			reqLines = append(reqLines, l)
			if l.str("route") == "/client-token" && l["status"] == float64(200) {
				served = append(served, l)
			}
		case "basiq token minted":
			minted = append(minted, l)
		case "client token served":
			t.Errorf("a separate served line: the request line is the audit event: %v", l)
		case "stopped":
			sawShutdown = true
		}
	}
	return reqLines, served, minted, sawShutdown
}

// checkTokenRequestLines: each served token's request line is an audit line naming tenant,
// user, session, key and source; one token came from Basiq and the rest from the local cache;
// and the minting request carries the correlation id of the one CLIENT_ACCESS mint line.
func checkTokenRequestLines(t *testing.T, served, minted []logLine, tokens int) {
	t.Helper()
	sources := map[string]int{}
	for _, l := range served {
		for _, k := range []string{"tenant", "user", "session", "key_id", "source"} {
			if l.str(k) == "" {
				t.Errorf("token request line without %s: %v", k, l)
			}
		}
		if l["audit"] != true {
			t.Errorf("token request line not marked audit: %v", l)
		}
		sources[l.str("source")]++
	}
	if sources["upstream"] != 1 || sources["l1"] != tokens {
		t.Errorf("sources %v, want 1 upstream and %d l1", sources, tokens)
	}
	var clientMints []logLine
	for _, l := range minted {
		if l.str("scope") == "CLIENT_ACCESS" {
			clientMints = append(clientMints, l)
		}
	}
	// The emulator, like Basiq, may send no correlation id with a token; when there is one,
	// the request line carries the mint's.
	first := served[0]
	if first.str("source") != "upstream" || len(clientMints) != 1 || clientMints[0]["audit"] != true ||
		first.str("correlation_id") != clientMints[0].str("correlation_id") {
		t.Errorf("minting request line %v and client mint lines %v: want one audit mint line with the same correlation id", first, clientMints)
	}
}

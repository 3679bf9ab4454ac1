package config

import (
	"fmt"
	"strings"
)

// DemoOrigins parses the value of BFF_DEMO_ORIGINS: the extra origins a demo BFF admits with
// credentialed CORS, so that an SPA on a dev server (http://127.0.0.1:5173) can call it. Items
// are separated by commas or spaces. Each must be an exact origin whose host is loopback:
// demo mode never answers another machine, and a remote origin here would let that site
// mint tokens with the demo cookie. Every problem is reported in one error.
func DemoOrigins(value string) ([]string, error) {
	var out, problems []string
	seen := map[string]bool{}
	for _, o := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		u, msg := parseOrigin(o)
		switch {
		case msg != "":
			problems = append(problems, msg)
		case !isLoopback(u.Hostname()) || strings.HasSuffix(u.Hostname(), ".localhost"):
			problems = append(problems, fmt.Sprintf("%q is not a loopback origin: demo mode admits only 127.0.0.1, [::1] and localhost", o))
		case !seen[o]:
			seen[o] = true
			out = append(out, o)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("BFF_DEMO_ORIGINS: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

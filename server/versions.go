package main

import (
	"log/slog"
	"strings"

	"github.com/basiq-bff/bff/config"
)

// warnSharedTokens says, once per API 2.x tenant at start-up, that its CLIENT_ACCESS token is
// not bound to a Basiq user: every signed-in person of that tenant holds the same token, and
// with it could act on any other Basiq user of the tenant's application (README, "Basiq
// versions").
func warnSharedTokens(log *slog.Logger, tenants []config.Tenant) {
	for _, t := range tenants {
		if strings.HasPrefix(t.Basiq.Version, "2.") {
			log.Warn("basiq API "+t.Basiq.Version+" client tokens are shared by all of this tenant's users and not bound to one Basiq user; "+
				"anyone signed in could use theirs on another person's Basiq user id. Move the tenant to API 3.0.",
				"tenant", t.ID, "version", t.Basiq.Version)
		}
	}
}

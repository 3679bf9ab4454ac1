package main

import (
	"strings"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/kv"
)

// checkRedisURL checks redis_url with the parser the server connects with (kv), as a
// config.Check: config check, start and reload report its problem beside config's own, in
// config's form. The message never quotes a password.
func checkRedisURL(c *config.Config) []string {
	if c.RedisURL == "" {
		return nil
	}
	if _, err := kv.Scheme(c.RedisURL); err != nil {
		return []string{"redis_url: " + strings.TrimPrefix(err.Error(), "kv redis: ")}
	}
	return nil
}

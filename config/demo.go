package config

import "path/filepath"

// Demo returns the built-in configuration used when no config file is given: loopback
// listeners, SQLite under dataDir, the in-process store instead of Redis, http cookies, and
// one API 3.0 tenant "demo" whose Basiq is the emulator at emulatorURL. The caller generates
// the two 64-hex-character keys (they need not survive a restart) and supplies the
// emulator's demo API key. The result passes Validate.
func Demo(dataDir, emulatorURL, demoKey, sessionKeyHex, cacheKeyHex string) *Config {
	c := defaults()
	secure := false
	c.Demo = true
	c.DatabaseURL = "sqlite:" + filepath.Join(dataDir, "bff.db")
	c.DatabaseURLSetting = PlainURL(c.DatabaseURL)
	c.RedisURL = ""
	c.RedisURLSetting = PlainURL("")
	c.SingleReplica = true
	c.PublicOrigin = "http://127.0.0.1:8080"
	c.Log.Format = "text"
	// No load balancer stands in front of the demo: nothing to drain.
	c.Shutdown.Drain = 0
	c.Session.Secure = &secure
	c.Session.Keys = []Secret{NewSecret(sessionKeyHex)}
	c.Cache.EncryptionKey = NewSecret(cacheKeyHex)
	c.Tenants = []Tenant{{
		ID:   "demo",
		Name: "Demo Lending",
		Basiq: Basiq{
			BaseURL:    emulatorURL,
			Version:    "3.0",
			ConsentURL: emulatorURL + "/home",
			APIKeys:    []APIKey{{ID: "demo", Secret: NewSecret(demoKey)}},
		},
	}}
	return &c
}

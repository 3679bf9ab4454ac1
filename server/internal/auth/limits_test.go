package auth

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientPrefix(t *testing.T) {
	tests := []struct {
		name, ip, want string
	}{
		{"IPv4 is the address", "203.0.113.7", "203.0.113.7/32"},
		{"IPv4-mapped IPv6 is the IPv4 address", "::ffff:203.0.113.7", "203.0.113.7/32"},
		{"IPv6 is its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"another address of the same /64", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"loopback", "::1", "::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientPrefix(netip.MustParseAddr(tc.ip)).String(); got != tc.want {
				t.Errorf("clientPrefix(%s) = %s, want %s", tc.ip, got, tc.want)
			}
		})
	}
}

func TestDeviceCookie(t *testing.T) {
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	mk := func(keys ...[]byte) *Service {
		return &Service{keys: Keys{Hash: []byte("h"), Device: keys}}
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc := mk(newKey, oldKey)
	account := svc.keyed("acct", "acme", "vic@acme.test")
	issued, err := svc.issueDevice(account, now)
	if err != nil {
		t.Fatal(err)
	}
	byOld, err := mk(oldKey).issueDevice(account, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		value   string
		account string
		at      time.Time
		ok      bool
	}{
		{"as issued", issued, account, now, true},
		{"signed by a key still listed", byOld, account, now, true},
		{"another account", issued, svc.keyed("acct", "acme", "other@acme.test"), now, false},
		{"signature edited", editedSignature(issued), account, now, false},
		{"payload edited", strings.Replace(issued, ".", ".0", 2), account, now, false},
		{"older than its lifetime", issued, account, now.Add(DeviceLifetime + time.Hour), false},
		{"issued in the future", issued, account, now.Add(-time.Hour), false},
		{"empty", "", account, now, false},
		{"garbage", "v1.x.y", account, now, false},
		{"huge", strings.Repeat("a", 10_000), account, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nonce, ok := svc.verifyDevice(tc.value, tc.account, tc.at)
			if ok != tc.ok || ok && nonce == "" {
				t.Errorf("verifyDevice = %q, %v; want ok %v", nonce, ok, tc.ok)
			}
		})
	}
	if _, ok := mk(oldKey).verifyDevice(issued, account, now); ok {
		t.Error("a cookie signed with a key no longer listed was accepted")
	}
}

// editedSignature changes the first character of value's signature to another one: its last
// character may carry only padding bits, so editing that alone could leave the bytes as they
// were.
func editedSignature(value string) string {
	i := strings.LastIndexByte(value, '.') + 1
	c := byte('A')
	if value[i] == 'A' {
		c = 'B'
	}
	return value[:i] + string(c) + value[i+1:]
}

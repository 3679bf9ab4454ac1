package config

import (
	"slices"
	"strings"
	"testing"
)

func TestDemoOrigins(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    []string
		wantErr string
	}{
		{name: "empty", value: "", want: nil},
		{name: "one vite origin", value: "http://127.0.0.1:5173", want: []string{"http://127.0.0.1:5173"}},
		{name: "commas and spaces", value: "http://localhost:5173, http://[::1]:3000 ,http://127.0.0.2:4200",
			want: []string{"http://localhost:5173", "http://[::1]:3000", "http://127.0.0.2:4200"}},
		{name: "duplicates kept once", value: "http://127.0.0.1:5173,http://127.0.0.1:5173", want: []string{"http://127.0.0.1:5173"}},
		{name: "remote host refused", value: "http://127.0.0.1:5173,https://app.example.com", wantErr: `"https://app.example.com" is not a loopback origin`},
		{name: "private address refused", value: "http://192.168.1.10:5173", wantErr: "not a loopback origin"},
		{name: "localhost subdomain refused", value: "http://evil.localhost:5173", wantErr: "not a loopback origin"},
		{name: "wildcard refused", value: "http://*:5173", wantErr: "not a loopback origin"},
		{name: "path refused", value: "http://127.0.0.1:5173/", wantErr: "remove the path"},
		{name: "not canonical", value: "HTTP://127.0.0.1:5173", wantErr: "must be written"},
		{name: "every problem at once", value: "https://a.example,http://127.0.0.1:5173/x", wantErr: "and localhost; \"http://127.0.0.1:5173/x\" is not an origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DemoOrigins(tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("DemoOrigins(%q) error = %v, want one containing %q", tc.value, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DemoOrigins(%q): %v", tc.value, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("DemoOrigins(%q) = %q, want %q", tc.value, got, tc.want)
			}
		})
	}
}

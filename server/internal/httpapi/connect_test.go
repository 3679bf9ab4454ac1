package httpapi

import (
	"slices"
	"strings"
	"testing"
)

func TestJobIDs(t *testing.T) {
	tests := []struct {
		name          string
		jobIDs, jobID []string
		want          []string
		ok            bool
	}{
		{name: "none: the person closed the Consent UI", ok: true},
		{name: "empty value", jobIDs: []string{""}, ok: true},
		{name: "one", jobIDs: []string{"5f3c2a"}, want: []string{"5f3c2a"}, ok: true},
		{name: "comma separated, spaces trimmed", jobIDs: []string{"a1, b2 ,c3"}, want: []string{"a1", "b2", "c3"}, ok: true},
		{name: "jobId as well, merged without repeats", jobIDs: []string{"a1,b2"}, jobID: []string{"a1"}, want: []string{"a1", "b2"}, ok: true},
		{name: "jobId alone", jobID: []string{"9d1e-44"}, want: []string{"9d1e-44"}, ok: true},
		{name: "repeated parameter", jobIDs: []string{"a1", "b2"}, want: []string{"a1", "b2"}, ok: true},
		{name: "ten is the most", jobIDs: []string{"a,b,c,d,e,f,g,h,i,j"}, want: strings.Split("a,b,c,d,e,f,g,h,i,j", ","), ok: true},
		{name: "eleven", jobIDs: []string{"a,b,c,d,e,f,g,h,i,j,k"}},
		{name: "markup", jobIDs: []string{"<script>"}},
		{name: "a path", jobIDs: []string{"../users"}},
		{name: "a leading dash", jobIDs: []string{"-a"}},
		{name: "65 characters", jobIDs: []string{strings.Repeat("a", 65)}},
		{name: "non-ASCII", jobIDs: []string{"jöb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := jobIDs(tc.jobIDs, tc.jobID)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("jobIDs = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestConsentProblem(t *testing.T) {
	tests := []struct {
		name, action, institution, connection string
		bad                                   bool
	}{
		{name: "nothing: the BFF decides"},
		{name: "connect", action: "connect"},
		{name: "connect to a bank", action: "connect", institution: "AU00000"},
		{name: "a bank without an action", institution: "AU00000"},
		{name: "manage", action: "manage"},
		{name: "extend", action: "extend"},
		{name: "update", action: "update"},
		{name: "reauthorise a connection", action: "reauthorise", connection: "c-123"},
		{name: "unknown action", action: "delete", bad: true},
		{name: "action in capitals", action: "Connect", bad: true},
		{name: "reauthorise every expiring connection", action: "reauthorise"},
		{name: "a connection without reauthorise", action: "connect", connection: "c-1", bad: true},
		{name: "a connection alone", connection: "c-1", bad: true},
		{name: "a bank with manage", action: "manage", institution: "AU00000", bad: true},
		{name: "a bank id with a slash", action: "connect", institution: "AU/1", bad: true},
		{name: "a long connection id", action: "reauthorise", connection: strings.Repeat("c", 65), bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := consentProblem(tc.action, tc.institution, tc.connection); (got != "") != tc.bad {
				t.Errorf("consentProblem = %q, want a problem: %v", got, tc.bad)
			}
		})
	}
}

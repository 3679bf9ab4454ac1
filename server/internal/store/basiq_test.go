package store

import "testing"

// testClearBasiqUserID: only the stale id is cleared, once; afterwards a new id can be bound.
func testClearBasiqUserID(t *testing.T, db *DB) {
	ctx := t.Context()
	u := mustCreate(t, db, "acme", "kim@example.com")
	if _, err := db.SetBasiqUserID(ctx, u.ID, "basiq-old"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		clear string
		want  bool
	}{
		{"another id is left alone", "basiq-other", false},
		{"the stored id is cleared", "basiq-old", true},
		{"clearing twice changes nothing", "basiq-old", false},
	}
	for _, st := range steps {
		got, err := db.ClearBasiqUserID(ctx, u.ID, st.clear)
		if err != nil || got != st.want {
			t.Fatalf("%s: ClearBasiqUserID = %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	got, err := db.SetBasiqUserID(ctx, u.ID, "basiq-new")
	if err != nil || got != "basiq-new" {
		t.Fatalf("bind after clearing = %q, %v", got, err)
	}
}

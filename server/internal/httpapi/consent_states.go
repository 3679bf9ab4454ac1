package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/basiq-bff/bff/server/internal/kv"
)

// maxStates is how many Consent UI states one session may have outstanding. A person has one
// Consent UI open, perhaps a second tab: more is someone filling Redis.
const maxStates = 5

// storeState saves a new state for the session and, when the session already has maxStates
// outstanding, deletes the oldest. Each session's states sit in maxStates numbered slots; a
// counter picks the slot, so the new state takes the place of the one issued maxStates
// calls ago.
func storeState(ctx context.Context, states kv.Store, sessHash, id string, value []byte) error {
	n, _, err := states.Incr(ctx, "stateseq:"+sessHash, stateTTL)
	if err != nil {
		return fmt.Errorf("count consent states: %w", err)
	}
	slot := "stateslot:" + sessHash + ":" + strconv.FormatInt(n%maxStates, 10)
	old, err := states.GetDel(ctx, slot)
	switch {
	case err == nil:
		if err := states.Delete(ctx, "state:"+string(old)); err != nil {
			return fmt.Errorf("drop the oldest consent state: %w", err)
		}
	case !errors.Is(err, kv.ErrNotFound):
		return fmt.Errorf("read a consent state slot: %w", err)
	}
	if err := states.Set(ctx, "state:"+id, value, stateTTL); err != nil {
		return fmt.Errorf("save consent state: %w", err)
	}
	if err := states.Set(ctx, slot, []byte(id), stateTTL); err != nil {
		return fmt.Errorf("save consent state slot: %w", err)
	}
	return nil
}

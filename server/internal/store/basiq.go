package store

import "context"

// ClearBasiqUserID unbinds the user from basiqUserID, but only if that is still the stored id:
// a conditional update, so of several replicas that found the same Basiq user gone, one clears
// it and the rest see that it was already replaced. It reports whether this call cleared it.
func (db *DB) ClearBasiqUserID(ctx context.Context, userID int64, basiqUserID string) (bool, error) {
	q := "UPDATE users SET basiq_user_id = NULL WHERE id = ? AND basiq_user_id = ?"
	if db.dialect == DialectPostgres {
		q = dollarPlaceholders(q)
	}
	res, err := db.sql.ExecContext(ctx, q, userID, basiqUserID)
	if err != nil {
		return false, unavailable("clear basiq user id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, unavailable("clear basiq user id", err)
	}
	return n == 1, nil
}

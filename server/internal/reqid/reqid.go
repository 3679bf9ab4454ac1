// Package reqid carries the request id of the HTTP request being served in its context, so
// that calls made on its behalf (to Basiq) can send it on. It imports only the standard
// library.
package reqid

import "context"

type key struct{}

// With returns ctx carrying request id id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

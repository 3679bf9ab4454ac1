package kv

import (
	"context"
	"errors"
	"time"
)

// Observed wraps s so that onError is called with the operation's name for every failure of
// the store itself (not for ErrNotFound): the metrics hook for kv errors.
func Observed(s Store, onError func(op string)) Store { return observed{s, onError} }

type observed struct {
	s       Store
	onError func(op string)
}

func (o observed) note(op string, err error) {
	if err != nil && !errors.Is(err, ErrNotFound) {
		o.onError(op)
	}
}

func (o observed) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := o.s.Get(ctx, key)
	o.note("get", err)
	return v, err
}

func (o observed) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := o.s.Set(ctx, key, value, ttl)
	o.note("set", err)
	return err
}

func (o observed) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := o.s.SetNX(ctx, key, value, ttl)
	o.note("setnx", err)
	return ok, err
}

func (o observed) SetXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := o.s.SetXX(ctx, key, value, ttl)
	o.note("setxx", err)
	return ok, err
}

func (o observed) GetDel(ctx context.Context, key string) ([]byte, error) {
	v, err := o.s.GetDel(ctx, key)
	o.note("getdel", err)
	return v, err
}

func (o observed) Delete(ctx context.Context, keys ...string) error {
	err := o.s.Delete(ctx, keys...)
	o.note("delete", err)
	return err
}

func (o observed) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	ok, err := o.s.CompareAndDelete(ctx, key, value)
	o.note("compare_and_delete", err)
	return ok, err
}

func (o observed) CompareAndExpire(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := o.s.CompareAndExpire(ctx, key, value, ttl)
	o.note("compare_and_expire", err)
	return ok, err
}

func (o observed) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	n, left, err := o.s.Incr(ctx, key, ttl)
	o.note("incr", err)
	return n, left, err
}

func (o observed) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, time.Duration, error) {
	n, left, err := o.s.IncrBy(ctx, key, delta, ttl)
	o.note("incrby", err)
	return n, left, err
}

func (o observed) SAdd(ctx context.Context, key string, ttl time.Duration, members ...string) error {
	err := o.s.SAdd(ctx, key, ttl, members...)
	o.note("sadd", err)
	return err
}

func (o observed) SMembers(ctx context.Context, key string) ([]string, error) {
	v, err := o.s.SMembers(ctx, key)
	o.note("smembers", err)
	return v, err
}

func (o observed) SRem(ctx context.Context, key string, members ...string) error {
	err := o.s.SRem(ctx, key, members...)
	o.note("srem", err)
	return err
}

func (o observed) Publish(ctx context.Context, channel string, msg []byte) error {
	err := o.s.Publish(ctx, channel, msg)
	o.note("publish", err)
	return err
}

func (o observed) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	ch, err := o.s.Subscribe(ctx, channel)
	o.note("subscribe", err)
	return ch, err
}

func (o observed) Ping(ctx context.Context) error {
	err := o.s.Ping(ctx)
	o.note("ping", err)
	return err
}

func (o observed) Close() error { return o.s.Close() }

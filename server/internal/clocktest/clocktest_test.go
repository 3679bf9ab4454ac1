package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("stands still until advanced", func(t *testing.T) {
		c := New(start)
		if got := c.Now(); !got.Equal(start) {
			t.Fatalf("Now() = %v, want %v", got, start)
		}
		if got := c.Now(); !got.Equal(start) {
			t.Fatalf("second Now() = %v, want %v", got, start)
		}
	})

	t.Run("advances add up", func(t *testing.T) {
		c := New(start)
		c.Advance(time.Minute)
		c.Advance(30 * time.Second)
		if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
			t.Fatalf("Now() = %v, want %v", got, want)
		}
	})

	t.Run("concurrent advances are all counted", func(t *testing.T) {
		c := New(start)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				c.Advance(time.Second)
				_ = c.Now()
			})
		}
		wg.Wait()
		if got, want := c.Now(), start.Add(100*time.Second); !got.Equal(want) {
			t.Fatalf("Now() = %v, want %v", got, want)
		}
	})
}

package eventbus

// This file holds the clock that times every run and stamps every event.

import (
	"sync/atomic"
	"time"
)

// A clock reads time for one bus. Its readings are relative to the bus's own
// start, so that a bus made inside a testing/synctest bubble sees only the
// bubble's fake time.
type clock struct {
	epoch time.Time
	last  atomic.Pointer[wallReading]
}

// A wallReading pairs a wall-clock reading with the mono reading taken with it.
type wallReading struct {
	wall time.Time
	mono int64
}

// wallResync is how often now reads the wall clock itself.
const wallResync = time.Millisecond

// start sets the clock's epoch: its readings count from now.
func (c *clock) start() { c.epoch = time.Now() }

// at returns the wall time of the mono reading m.
func (c *clock) at(m int64) time.Time {
	if w := c.last.Load(); w != nil {
		return w.wall.Add(time.Duration(m - w.mono))
	}
	return c.epoch.Add(time.Duration(m))
}

// mono reads the monotonic clock: nanoseconds since the bus was created.
func (c *clock) mono() int64 { return int64(time.Since(c.epoch)) }

// now returns the current time and its mono reading with a single clock read:
// it advances the last wall-clock reading by the monotonic clock, and reads
// the wall clock again when that reading is older than wallResync. Both clocks
// advance at the same rate, so the result differs from time.Now only for up to
// wallResync after the wall clock is stepped.
func (c *clock) now() (time.Time, int64) {
	m := c.mono()
	if w := c.last.Load(); w != nil {
		if d := m - w.mono; d > -int64(wallResync) && d < int64(wallResync) {
			return w.wall.Add(time.Duration(d)), m
		}
	}
	t := time.Now()
	m = int64(t.Sub(c.epoch))
	t = t.Round(0) // wall time only: it is a timestamp, and Add is cheaper without the monotonic reading
	c.last.Store(&wallReading{wall: t, mono: m})
	return t, m
}

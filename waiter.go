package eventbus

// This file holds what a waiting PublishAndWait caller does: wait for its
// delivery while lending the bus's queues a goroutine each, and, if its ctx
// ends first, report what was done and what was not.

import (
	"errors"
	"sync/atomic"
)

// await waits until d completes, or d.ctx ends, and returns the report.
// While it waits, each queue may run one goroutine above its bound (see
// PublishAndWait).
func (b *Bus) await(d *delivery) error {
	select {
	case <-d.done:
		return d.result()
	default:
	}
	if b.maxWorkers > 0 {
		b.workers.lend()
		defer b.workers.unlend()
	}
	b.async.lend()
	defer b.async.unlend()
	select {
	case <-d.done:
		return d.result()
	case <-d.ctx.Done():
		return d.giveUp()
	}
}

// giveUp is a waiting publisher's exit when its ctx ends before d
// completes: it returns errors.Join of ctx.Err(), the HandlerErrors of the
// runs that already failed and a PendingError naming the others, and
// leaves d to whoever finishes its last run. If d completed meanwhile, it
// returns the complete result instead.
func (d *delivery) giveUp() error {
	report := d.partialReport()
	if !d.waiter.CompareAndSwap(waiting, gaveUp) {
		<-d.done
		return d.result()
	}
	return report
}

// partialReport reports d's runs as they stand: those finished with an
// error, and those not finished.
func (d *delivery) partialReport() error {
	errs := []error{d.ctx.Err()}
	var pending PendingError
	for i := range d.outcomes {
		o := &d.outcomes[i]
		if atomic.LoadUint32(&o.done) == 0 {
			s := d.runs[i].s
			pending.Runs = append(pending.Runs, PendingRun{SubscriptionID: s.id, Name: s.name, Async: s.kind == asyncHandler})
		} else if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	if len(pending.Runs) > 0 {
		errs = append(errs, &pending)
	}
	return errors.Join(errs...)
}

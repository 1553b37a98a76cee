package eventbus

// This file holds the loop of the bus's goroutines: the workers and the
// async goroutines run the same loop, each on its own queue.

// serve takes runs from q and runs them, each with the lane runs that
// follow it, until q tells the goroutine to exit. shard picks the counters
// it adds to. A goroutine that a handler ends with runtime.Goexit is
// replaced, so that the queue keeps its size; the run it was in is
// reported as failed, and it held no other.
func (b *Bus) serve(q *queue, shard int) {
	r := runner{b: b, m: &b.shards[shard], q: q, coming: true}
	defer r.replaceIfEnding(q, shard)
	for {
		ref, j, ok := q.take(&r)
		if !ok {
			return
		}
		r.runChain(ref, j)
	}
}

// replaceIfEnding is deferred by serve: a goroutine that runtime.Goexit
// ends has a replacement started.
func (r *runner) replaceIfEnding(q *queue, shard int) {
	if r.ending {
		q.replace(shard)
	}
}

// Package bench compares [github.com/adws/eventbus] with other in-process
// event buses, pinned in this module's go.mod, and with hand-written
// baselines. It is a module of its own so that the peers never enter the
// library's go.mod.
//
// The benchmarks are in the _test.go files, one per contender; run.sh runs
// them and cmd/benchtable turns their output into the tables of README.md.
// Every sub-benchmark checks, after it has measured, that each handler ran
// exactly as often as it should; a contender that loses events fails with
// "loses events" and gets no figure.
package bench

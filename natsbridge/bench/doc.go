// Package bench compares natsbridge with what a user would otherwise run
// to carry the same events between two processes over NATS: nats.go on its
// own, core and JetStream, and watermill's NATS adapter
// (github.com/ThreeDotsLabs/watermill-nats/v2). It is a module of its own,
// so that the peers never enter natsbridge's go.mod, and holds only
// benchmarks: see BenchmarkCrossing, README.md and run.sh.
package bench

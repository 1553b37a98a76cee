//go:build race

package otelbus_test

const raceEnabled = true

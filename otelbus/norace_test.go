//go:build !race

package otelbus_test

const raceEnabled = false

//go:build race

package clienttoken

// raceEnabled: the race detector slows the simulation about tenfold.
const raceEnabled = true

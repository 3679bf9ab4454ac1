//go:build !race

package clienttoken

const raceEnabled = false

//go:build race

package server

// raceDetector: the race detector slows the model's arithmetic about
// tenfold, so the load test runs fewer streams under it.
const raceDetector = true

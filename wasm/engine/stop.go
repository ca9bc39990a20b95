package engine

import "strings"

// stopper holds back text that may be the start of a stop string, and
// reports when one appears (the stop string itself is never emitted).
type stopper struct {
	stops []string
	held  string
}

func newStopper(stops []string) *stopper {
	var s []string
	for _, x := range stops {
		if x != "" {
			s = append(s, x)
		}
	}
	return &stopper{stops: s}
}

// push adds text and returns what can be emitted now, and whether a stop
// string was found (then the text before it is returned).
func (s *stopper) push(text string) (string, bool) {
	if len(s.stops) == 0 {
		return text, false
	}
	buf := s.held + text
	for _, st := range s.stops {
		if i := strings.Index(buf, st); i >= 0 {
			s.held = ""
			return buf[:i], true
		}
	}
	// Hold back the longest suffix that is a prefix of some stop string.
	keep := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(buf)); k > keep; k-- {
			if strings.HasSuffix(buf, st[:k]) {
				keep = k
				break
			}
		}
	}
	s.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

func (s *stopper) flush() string {
	h := s.held
	s.held = ""
	return h
}
